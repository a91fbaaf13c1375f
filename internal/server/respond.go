package server

import (
	"encoding/json"
	"net/http"
	"sync"
)

// errorBody is every error answer: a message a person can act on.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeAck answers a webhook delivery 200 with a one-line body: the
// sender reads only the status, and a person reading a log of it still
// gets the JSON. The few distinct answers are encoded once each (see
// ackMemo).
func (m *ackMemo) writeAck(w http.ResponseWriter, v accepted) {
	b, err := m.encode(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode answer: "+err.Error())
		return
	}
	h := w.Header()
	// The values are shared by every answer; the server only reads them.
	h["Content-Type"] = contentTypeJSON
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

var (
	contentTypeJSON = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

// ackMemoMax bounds the memo: answers name the event type, and a sender
// may invent types (an unknown one is accepted and ignored).
const ackMemoMax = 256

// ackMemo holds the encoded answers given so far, newline included. The
// zero value is ready to use.
type ackMemo struct {
	mu   sync.RWMutex
	seen map[accepted][]byte
}

func (m *ackMemo) encode(v accepted) ([]byte, error) {
	m.mu.RLock()
	b, ok := m.seen[v]
	m.mu.RUnlock()
	if ok {
		return b, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	m.mu.Lock()
	if m.seen == nil {
		m.seen = make(map[accepted][]byte)
	}
	if len(m.seen) < ackMemoMax {
		m.seen[v] = b
	}
	m.mu.Unlock()
	return b, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}
