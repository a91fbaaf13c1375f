package schemacheck

import (
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// The hand-written schema.graphql is laid out by its authors and carries a
// comment on nearly every line saying where the field was seen. Pull keeps
// both: it reads the file into the model below — each definition, field,
// argument and enum value with the comments above it and the one at the end
// of its line (and the column that comment starts at) — and writes the same
// model back with the live API's types. A file pulled from an API that
// matches it comes out byte for byte the same.

// comment is a # comment at the end of a line of code.
type comment struct {
	text string // from the #, trimmed at the right
	col  int    // column (from 0) it started at; 0 for a new one
}

// srcFile is a schema file as written.
type srcFile struct {
	header []string // every line before the first definition
	defs   []*srcDef
	footer []string // comment lines after the last definition
}

type srcDef struct {
	def *ast.Definition
	// tight: no blank line between it and the definition before it (a run
	// of scalars).
	tight    bool
	leading  []string // comment lines above it
	trailing comment
	// oneLine: an enum written { A B C } on the line of its name.
	oneLine bool
	// valueLines: an enum's values as grouped on the lines of the file.
	valueLines [][]*srcValue
	fields     []*srcField
}

type srcValue struct {
	name     string
	leading  []string
	trailing comment
}

type srcField struct {
	f        *ast.FieldDefinition
	leading  []string
	trailing comment // on the line of its name
	// multiLine: its arguments are each on a line of their own, and
	// closing is the comment on the line of its type, "): Type".
	multiLine bool
	closing   comment
	args      []*srcArg
}

type srcArg struct {
	a        *ast.ArgumentDefinition
	leading  []string
	trailing comment
}

// readSource reads a schema file into the model, or says why it cannot:
// it must parse, and hold only what Pull can write back (no descriptions,
// no directives but @deprecated, no extensions or schema block).
func readSource(name, text string) (*srcFile, error) {
	doc, err := parser.ParseSchema(&ast.Source{Name: name, Input: text})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Definitions) == 0 {
		return nil, fmt.Errorf("%s: no type definitions", name)
	}
	if len(doc.Schema) > 0 || len(doc.Extensions) > 0 || len(doc.SchemaExtension) > 0 {
		return nil, fmt.Errorf("%s: a schema block or an extension: pull rewrites only type definitions", name)
	}
	lines := strings.Split(text, "\n")
	r := &lineReader{lines: lines, claimed: map[int]bool{}}
	f := &srcFile{}
	first := doc.Definitions[0].Position.Line
	f.header = lines[:first-1]
	for i, d := range doc.Definitions {
		if d.Description != "" {
			return nil, fmt.Errorf("%s:%d: %s has a description: pull keeps # comments only", name, d.Position.Line, d.Name)
		}
		sd := &srcDef{def: d}
		if i > 0 {
			above := r.above(d.Position.Line)
			sd.tight = len(above) == 0 || above[0] != ""
			sd.leading = trimBlank(above)
		}
		sd.trailing = r.trailing(d.Position.Line)
		switch d.Kind {
		case ast.Enum:
			sd.oneLine = len(d.EnumValues) > 0 && d.EnumValues[0].Position.Line == d.Position.Line
			line := -1
			for _, v := range d.EnumValues {
				sv := &srcValue{name: v.Name}
				if v.Position.Line != line {
					line = v.Position.Line
					if !sd.oneLine {
						sv.leading = collapse(r.above(line))
						sv.trailing = r.trailing(line)
					}
					sd.valueLines = append(sd.valueLines, nil)
				}
				sd.valueLines[len(sd.valueLines)-1] = append(sd.valueLines[len(sd.valueLines)-1], sv)
			}
		case ast.Object, ast.Interface, ast.InputObject:
			for _, fd := range d.Fields {
				if fd.Description != "" {
					return nil, fmt.Errorf("%s:%d: %s.%s has a description: pull keeps # comments only", name, fd.Position.Line, d.Name, fd.Name)
				}
				sf := &srcField{f: fd, leading: collapse(r.above(fd.Position.Line)), trailing: r.trailing(fd.Position.Line)}
				if len(fd.Arguments) > 0 && fd.Arguments[0].Position.Line != fd.Position.Line {
					sf.multiLine = true
					for _, a := range fd.Arguments {
						sf.args = append(sf.args, &srcArg{a: a, leading: collapse(r.above(a.Position.Line)), trailing: r.trailing(a.Position.Line)})
					}
					sf.closing = r.trailing(fd.Type.Position.Line)
				} else {
					for _, a := range fd.Arguments {
						sf.args = append(sf.args, &srcArg{a: a})
					}
				}
				sd.fields = append(sd.fields, sf)
			}
		}
		f.defs = append(f.defs, sd)
	}
	// Comment lines after the last definition's closing line.
	end := len(lines)
	for end > 0 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	start := end
	for start > 0 && strings.HasPrefix(strings.TrimSpace(lines[start-1]), "#") {
		start--
	}
	if start < end && start >= doc.Definitions[len(doc.Definitions)-1].Position.Line {
		f.footer = lines[start:end]
	}
	return f, nil
}

// lineReader finds the comments of the file's lines; each end-of-line
// comment belongs to the first item that asks for it.
type lineReader struct {
	lines   []string
	claimed map[int]bool
}

// trailing is the comment at the end of line n (from 1), unless an earlier
// item took it.
func (r *lineReader) trailing(n int) comment {
	if n < 1 || n > len(r.lines) || r.claimed[n] {
		return comment{}
	}
	line := r.lines[n-1]
	i := commentStart(line)
	if i < 0 || strings.TrimSpace(line[:i]) == "" {
		return comment{}
	}
	r.claimed[n] = true
	return comment{text: strings.TrimRight(line[i:], " \t\r"), col: i}
}

// above returns the comment and blank lines right above line n (from 1),
// up to the closest line with code.
func (r *lineReader) above(n int) []string {
	start := n - 1
	for start > 0 {
		t := strings.TrimSpace(r.lines[start-1])
		if t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		start--
	}
	out := make([]string, 0, n-1-start)
	for _, l := range r.lines[start : n-1] {
		out = append(out, strings.TrimRight(l, " \t\r"))
	}
	return out
}

// commentStart is the index of the # that starts a comment in line, -1 if
// none; a # inside a string does not count.
func commentStart(line string) int {
	inString := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && inString:
			i++
		case c == '"':
			inString = !inString
		case c == '#' && !inString:
			return i
		}
	}
	return -1
}

// trimBlank drops blank lines at the start (a definition is always
// preceded by one blank line).
func trimBlank(lines []string) []string {
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	return collapse(lines)
}

// collapse keeps at most one blank line in a row.
func collapse(lines []string) []string {
	out := lines[:0:0]
	for i, l := range lines {
		if l == "" && i > 0 && lines[i-1] == "" {
			continue
		}
		out = append(out, l)
	}
	return out
}
