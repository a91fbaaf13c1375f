package schemacheck

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// introspection is the part of an introspection answer a schema is built
// from (graphql.IntrospectionQuery asks for it).
type introspection struct {
	Schema struct {
		QueryType        *struct{ Name string } `json:"queryType"`
		MutationType     *struct{ Name string } `json:"mutationType"`
		SubscriptionType *struct{ Name string } `json:"subscriptionType"`
		Types            []introType            `json:"types"`
	} `json:"__schema"`
}

type introType struct {
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Fields      []introField `json:"fields"`
	InputFields []introInput `json:"inputFields"`
	Interfaces  []typeRef    `json:"interfaces"`
	EnumValues  []struct {
		Name              string  `json:"name"`
		IsDeprecated      bool    `json:"isDeprecated"`
		DeprecationReason *string `json:"deprecationReason"`
	} `json:"enumValues"`
	PossibleTypes []typeRef `json:"possibleTypes"`
}

type introField struct {
	Name              string       `json:"name"`
	Args              []introInput `json:"args"`
	Type              typeRef      `json:"type"`
	IsDeprecated      bool         `json:"isDeprecated"`
	DeprecationReason *string      `json:"deprecationReason"`
}

type introInput struct {
	Name         string  `json:"name"`
	Type         typeRef `json:"type"`
	DefaultValue *string `json:"defaultValue"`
}

type typeRef struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	OfType *typeRef `json:"ofType"`
}

// sdl writes the reference as SDL does: [Instance]!.
func (r typeRef) sdl() (string, error) {
	switch r.Kind {
	case "NON_NULL", "LIST":
		if r.OfType == nil {
			return "", fmt.Errorf("a %s type without ofType (the answer is cut short: nested deeper than the query asks?)", r.Kind)
		}
		inner, err := r.OfType.sdl()
		if err != nil {
			return "", err
		}
		if r.Kind == "LIST" {
			return "[" + inner + "]", nil
		}
		return inner + "!", nil
	}
	if !validName(r.Name) {
		return "", fmt.Errorf("type reference %q is not a GraphQL name", r.Name)
	}
	return r.Name, nil
}

// FromIntrospection builds a schema from the data of an introspection
// answer (the object that holds __schema). Descriptions are left out; so
// are directive definitions, which operations do not need to be checked.
func FromIntrospection(data []byte) (*ast.Schema, error) {
	var in introspection
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("introspection answer: %w", err)
	}
	if len(in.Schema.Types) == 0 {
		return nil, fmt.Errorf("introspection answer has no types")
	}
	sdl, err := in.sdl()
	if err != nil {
		return nil, err
	}
	s, gerr := gqlparser.LoadSchema(&ast.Source{Name: "introspection", Input: sdl})
	if gerr != nil {
		return nil, fmt.Errorf("introspected schema does not load: %w", gerr)
	}
	return s, nil
}

// builtIn are the types every schema has; SDL must not declare them again.
var builtIn = []string{"String", "Int", "Float", "Boolean", "ID"}

func (in introspection) sdl() (string, error) {
	var b strings.Builder
	s := in.Schema
	if s.QueryType == nil {
		return "", fmt.Errorf("introspection answer has no query type")
	}
	root := func(op string, t *struct{ Name string }) {
		if t != nil {
			fmt.Fprintf(&b, "  %s: %s\n", op, t.Name)
		}
	}
	b.WriteString("schema {\n")
	root("query", s.QueryType)
	root("mutation", s.MutationType)
	root("subscription", s.SubscriptionType)
	b.WriteString("}\n\n")
	for _, t := range s.Types {
		if strings.HasPrefix(t.Name, "__") || slices.Contains(builtIn, t.Name) {
			continue
		}
		if !validName(t.Name) {
			return "", fmt.Errorf("type %q is not a GraphQL name", t.Name)
		}
		if err := t.sdl(&b); err != nil {
			return "", fmt.Errorf("type %s: %w", t.Name, err)
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func (t introType) sdl(b *strings.Builder) error {
	switch t.Kind {
	case "SCALAR":
		fmt.Fprintf(b, "scalar %s\n", t.Name)
	case "ENUM":
		fmt.Fprintf(b, "enum %s {\n", t.Name)
		for _, v := range t.EnumValues {
			if !validName(v.Name) {
				return fmt.Errorf("enum value %q is not a GraphQL name", v.Name)
			}
			fmt.Fprintf(b, "  %s%s\n", v.Name, deprecated(v.IsDeprecated, v.DeprecationReason))
		}
		b.WriteString("}\n")
	case "INPUT_OBJECT":
		fmt.Fprintf(b, "input %s {\n", t.Name)
		for _, f := range t.InputFields {
			line, err := f.sdl()
			if err != nil {
				return err
			}
			fmt.Fprintf(b, "  %s\n", line)
		}
		b.WriteString("}\n")
	case "OBJECT", "INTERFACE":
		kw := "type"
		if t.Kind == "INTERFACE" {
			kw = "interface"
		}
		fmt.Fprintf(b, "%s %s", kw, t.Name)
		if len(t.Interfaces) > 0 {
			names := make([]string, 0, len(t.Interfaces))
			for _, i := range t.Interfaces {
				if !validName(i.Name) {
					return fmt.Errorf("interface %q is not a GraphQL name", i.Name)
				}
				names = append(names, i.Name)
			}
			b.WriteString(" implements " + strings.Join(names, " & "))
		}
		b.WriteString(" {\n")
		for _, f := range t.Fields {
			if !validName(f.Name) {
				return fmt.Errorf("field %q is not a GraphQL name", f.Name)
			}
			typ, err := f.Type.sdl()
			if err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
			b.WriteString("  " + f.Name)
			if len(f.Args) > 0 {
				args := make([]string, 0, len(f.Args))
				for _, a := range f.Args {
					line, err := a.sdl()
					if err != nil {
						return fmt.Errorf("field %s: %w", f.Name, err)
					}
					args = append(args, line)
				}
				b.WriteString("(" + strings.Join(args, ", ") + ")")
			}
			fmt.Fprintf(b, ": %s%s\n", typ, deprecated(f.IsDeprecated, f.DeprecationReason))
		}
		b.WriteString("}\n")
	case "UNION":
		names := make([]string, 0, len(t.PossibleTypes))
		for _, p := range t.PossibleTypes {
			if !validName(p.Name) {
				return fmt.Errorf("union member %q is not a GraphQL name", p.Name)
			}
			names = append(names, p.Name)
		}
		fmt.Fprintf(b, "union %s = %s\n", t.Name, strings.Join(names, " | "))
	default:
		return fmt.Errorf("unknown kind %q", t.Kind)
	}
	return nil
}

func (a introInput) sdl() (string, error) {
	if !validName(a.Name) {
		return "", fmt.Errorf("argument %q is not a GraphQL name", a.Name)
	}
	typ, err := a.Type.sdl()
	if err != nil {
		return "", fmt.Errorf("argument %s: %w", a.Name, err)
	}
	line := a.Name + ": " + typ
	if a.DefaultValue != nil {
		if !literal(*a.DefaultValue) {
			return "", fmt.Errorf("argument %s: default value %q is not one GraphQL literal", a.Name, *a.DefaultValue)
		}
		line += " = " + *a.DefaultValue
	}
	return line, nil
}

// literal reports whether s is one GraphQL value literal and nothing more,
// by parsing it as the default of a variable: text that closed the
// definition early would change the shape of the parsed document.
func literal(s string) bool {
	doc, err := parser.ParseQuery(&ast.Source{Input: "query($v: Boolean = " + s + ") { __typename }"})
	if err != nil || len(doc.Operations) != 1 || len(doc.Fragments) != 0 {
		return false
	}
	op := doc.Operations[0]
	if len(op.VariableDefinitions) != 1 || op.VariableDefinitions[0].DefaultValue == nil || len(op.SelectionSet) != 1 {
		return false
	}
	f, ok := op.SelectionSet[0].(*ast.Field)
	return ok && f.Name == "__typename" && len(f.Arguments) == 0 && len(f.SelectionSet) == 0
}

func deprecated(is bool, reason *string) string {
	if !is {
		return ""
	}
	if reason == nil || *reason == "" {
		return " @deprecated"
	}
	return " @deprecated(reason: " + strconv.Quote(*reason) + ")"
}

// validName reports whether s is a GraphQL name, so that nothing an answer
// holds can change the shape of the SDL written from it.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
