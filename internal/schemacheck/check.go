package schemacheck

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// Difference is one field or argument the operations use whose type differs
// between schema.graphql and the live API, or that the live API lacks.
type Difference struct {
	// Field names it: Instance.needsDeploy, or Query.instances(sortBy) for
	// an argument.
	Field string
	// Ours is its type in schema.graphql; Live its type in the API, ""
	// when the API has no such field or argument (or, for a required
	// argument the operations do not pass, Ours is "").
	Ours, Live string
	// Operations are the operations that use it, sorted.
	Operations []string
}

func (d Difference) String() string {
	ops := strings.Join(d.Operations, ", ")
	switch {
	case d.Live == "":
		return fmt.Sprintf("%s: schema.graphql has %s, the API has no such field or argument (used by %s)", d.Field, d.Ours, ops)
	case d.Ours == "":
		return fmt.Sprintf("%s: the API requires this argument (%s), which the operations do not pass (in %s)", d.Field, d.Live, ops)
	}
	return fmt.Sprintf("%s: schema.graphql has %s, the API has %s (used by %s)", d.Field, d.Ours, d.Live, ops)
}

// Report is what Check found.
type Report struct {
	// Operations are the names of the operations checked, sorted.
	Operations []string
	// Differences are the fields and arguments that differ, by name.
	Differences []Difference
	// Refused are the live API's validation errors for the operations:
	// what it would answer them.
	Refused []string
	// Deprecated lists fields the operations use that the API marks
	// deprecated: they work today.
	Deprecated []string
}

// OK reports whether the operations match the live schema.
func (r Report) OK() bool { return len(r.Differences) == 0 && len(r.Refused) == 0 }

// Check validates the operations in ops (one GraphQL document, as
// graphql.OperationsSource returns it) against live, and compares the type
// of every field and argument they use between ours (schema.graphql) and
// live. A nullable field that became non-null, or the reverse, is a
// difference even where the API would still accept the query: the client's
// generated types were made for ours.
func Check(ours, live *ast.Schema, ops string) (Report, error) {
	doc, gerr := gqlparser.LoadQuery(ours, ops)
	if gerr != nil {
		return Report{}, fmt.Errorf("the operations do not validate against schema.graphql itself: %w", gerr)
	}
	var rep Report
	for _, op := range doc.Operations {
		rep.Operations = append(rep.Operations, op.Name)
	}
	sort.Strings(rep.Operations)
	if _, gerr := gqlparser.LoadQuery(live, ops); gerr != nil {
		for _, e := range gerr {
			rep.Refused = append(rep.Refused, e.Message)
		}
		rep.Refused = uniqueSorted(rep.Refused)
	}
	diffs := map[string]*Difference{}
	deprecated := map[string]bool{}
	note := func(key, ours, live, op string) {
		d := diffs[key]
		if d == nil {
			d = &Difference{Field: key, Ours: ours, Live: live}
			diffs[key] = d
		}
		if !slices.Contains(d.Operations, op) {
			d.Operations = append(d.Operations, op)
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet, map[string]bool{}, func(f *ast.Field) {
			if f.Definition == nil || f.ObjectDefinition == nil || strings.HasPrefix(f.Name, "__") {
				return
			}
			parent := f.ObjectDefinition.Name
			key := parent + "." + f.Name
			ourType := f.Definition.Type.String()
			liveDef := live.Types[parent]
			var liveField *ast.FieldDefinition
			if liveDef != nil {
				liveField = liveDef.Fields.ForName(f.Name)
			}
			if liveField == nil {
				note(key, ourType, "", op.Name)
				return
			}
			if lt := liveField.Type.String(); lt != ourType {
				note(key, ourType, lt, op.Name)
			}
			if liveField.Directives.ForName("deprecated") != nil {
				deprecated[key] = true
			}
			for _, a := range f.Arguments {
				akey := fmt.Sprintf("%s(%s)", key, a.Name)
				ourArg := f.Definition.Arguments.ForName(a.Name)
				liveArg := liveField.Arguments.ForName(a.Name)
				switch {
				case ourArg == nil:
				case liveArg == nil:
					note(akey, ourArg.Type.String(), "", op.Name)
				case liveArg.Type.String() != ourArg.Type.String():
					note(akey, ourArg.Type.String(), liveArg.Type.String(), op.Name)
				}
			}
			for _, la := range liveField.Arguments {
				if la.Type.NonNull && la.DefaultValue == nil && f.Arguments.ForName(la.Name) == nil {
					note(fmt.Sprintf("%s(%s)", key, la.Name), "", la.Type.String(), op.Name)
				}
			}
		})
	}
	for _, d := range diffs {
		sort.Strings(d.Operations)
		rep.Differences = append(rep.Differences, *d)
	}
	sort.Slice(rep.Differences, func(i, j int) bool { return rep.Differences[i].Field < rep.Differences[j].Field })
	for k := range deprecated {
		rep.Deprecated = append(rep.Deprecated, k)
	}
	sort.Strings(rep.Deprecated)
	return rep, nil
}

// walk calls fn for every field of set, following fragment spreads (each
// fragment once) and inline fragments.
func walk(set ast.SelectionSet, seen map[string]bool, fn func(*ast.Field)) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			fn(s)
			walk(s.SelectionSet, seen, fn)
		case *ast.InlineFragment:
			walk(s.SelectionSet, seen, fn)
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				walk(s.Definition.SelectionSet, seen, fn)
			}
		}
	}
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}
