package gqlexec

import (
	"slices"

	"github.com/vektah/gqlparser/v2/ast"
)

// fieldGroup is the set of field nodes that share one response key; the
// specification merges them into one result field.
type fieldGroup struct {
	key    string
	fields []*ast.Field
}

// collectFields implements the specification's CollectFields: it flattens
// fragments that apply to objType, drops selections excluded by @skip or
// @include, and groups fields by response key in first-seen order.
func (x *execution) collectFields(objType *ast.Definition, set ast.SelectionSet, groups []fieldGroup, visited map[string]bool) ([]fieldGroup, error) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			ok, err := x.included(s.Directives)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			i := slices.IndexFunc(groups, func(g fieldGroup) bool { return g.key == key })
			if i < 0 {
				groups = append(groups, fieldGroup{key: key, fields: []*ast.Field{s}})
			} else {
				groups[i].fields = append(groups[i].fields, s)
			}
		case *ast.FragmentSpread:
			ok, err := x.included(s.Directives)
			if err != nil {
				return nil, err
			}
			if !ok || visited[s.Name] {
				continue
			}
			visited[s.Name] = true
			frag := s.Definition
			if frag == nil {
				frag = x.doc.Fragments.ForName(s.Name)
			}
			if frag == nil || !x.applies(objType, frag.TypeCondition) {
				continue
			}
			groups, err = x.collectFields(objType, frag.SelectionSet, groups, visited)
			if err != nil {
				return nil, err
			}
		case *ast.InlineFragment:
			ok, err := x.included(s.Directives)
			if err != nil {
				return nil, err
			}
			if !ok || !x.applies(objType, s.TypeCondition) {
				continue
			}
			groups, err = x.collectFields(objType, s.SelectionSet, groups, visited)
			if err != nil {
				return nil, err
			}
		}
	}
	return groups, nil
}

// collectSubfields merges the selection sets of every field node in a group,
// as the specification's CollectSubfields does.
func (x *execution) collectSubfields(objType *ast.Definition, fields []*ast.Field) ([]fieldGroup, error) {
	var groups []fieldGroup
	visited := map[string]bool{}
	for _, f := range fields {
		var err error
		groups, err = x.collectFields(objType, f.SelectionSet, groups, visited)
		if err != nil {
			return nil, err
		}
	}
	return groups, nil
}

// applies reports whether a fragment with type condition cond applies to an
// object of type objType.
func (x *execution) applies(objType *ast.Definition, cond string) bool {
	if cond == "" || cond == objType.Name {
		return true
	}
	def := x.e.schema.Types[cond]
	if def == nil || !def.IsAbstractType() {
		return false
	}
	return slices.ContainsFunc(x.e.schema.GetPossibleTypes(def), func(d *ast.Definition) bool {
		return d.Name == objType.Name
	})
}

// included evaluates @skip(if:) and @include(if:).
func (x *execution) included(dirs ast.DirectiveList) (bool, error) {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		def := x.e.schema.Directives[d.Name]
		if def == nil {
			continue
		}
		args, err := x.coerceArguments(def.Arguments, d.Arguments)
		if err != nil {
			return false, err
		}
		cond, _ := args.Bool("if")
		if d.Name == "skip" && cond {
			return false, nil
		}
		if d.Name == "include" && !cond {
			return false, nil
		}
	}
	return true, nil
}
