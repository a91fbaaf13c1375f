package prismaticsim

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/prismcache/prismcache"
)

// SchemaChange makes the served schema differ from schema.graphql in one
// field, so that a client can be tested against a Prismatic whose schema is
// not the one it was generated from. The zero value changes nothing.
//
// Introspection and validation see the changed schema: a removed field is
// an unknown field in queries, a retyped one shows its new type. Values are
// still served as schema.graphql types them.
type SchemaChange struct {
	// Field is the field to change, as "Type.field" (Instance.needsDeploy).
	Field string
	// Type is the field's new type in GraphQL syntax: "Boolean" makes
	// Instance.needsDeploy nullable, "String!" changes Int! to String!.
	// Empty removes the field.
	Type string
}

// ParseSchemaChange reads a SchemaChange written "Type.field=NewType", or
// "Type.field=" to remove the field, as the --schema-change flag of
// prismcache sim takes it. It checks the syntax only; New checks the change
// against the schema.
func ParseSchemaChange(s string) (SchemaChange, error) {
	field, typ, ok := strings.Cut(s, "=")
	if !ok || field == "" {
		return SchemaChange{}, fmt.Errorf("schema change %q: want Type.field=NewType, or Type.field= to remove the field", s)
	}
	return SchemaChange{Field: strings.TrimSpace(field), Type: strings.TrimSpace(typ)}, nil
}

// String writes c as ParseSchemaChange reads it.
func (c SchemaChange) String() string {
	if c.Field == "" {
		return ""
	}
	return c.Field + "=" + c.Type
}

// servedSchema loads schema.graphql and applies c to it.
func servedSchema(c SchemaChange) (*ast.Schema, error) {
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: prismcache.Schema()})
	if err != nil {
		return nil, fmt.Errorf("load schema: %w", err)
	}
	if c == (SchemaChange{}) {
		return schema, nil
	}
	typeName, fieldName, _ := strings.Cut(c.Field, ".")
	def := schema.Types[typeName]
	if def == nil || def.BuiltIn || def.Kind != ast.Object {
		return nil, fmt.Errorf("schema change %s: no object type %q in schema.graphql", c, typeName)
	}
	i := slices.IndexFunc(def.Fields, func(f *ast.FieldDefinition) bool { return f.Name == fieldName })
	if i < 0 {
		return nil, fmt.Errorf("schema change %s: type %s has no field %q", c, typeName, fieldName)
	}
	// The loaded schema is this Sim's own, but its field list is not
	// changed in place, so that nothing sharing it sees half a change.
	def.Fields = slices.Clone(def.Fields)
	if c.Type == "" {
		def.Fields = slices.Delete(def.Fields, i, i+1)
		return schema, nil
	}
	typ, err := parseType(c.Type)
	if err != nil {
		return nil, fmt.Errorf("schema change %s: %w", c, err)
	}
	named := schema.Types[typ.Name()]
	if named == nil {
		return nil, fmt.Errorf("schema change %s: no type %q in schema.graphql", c, typ.Name())
	}
	if named.Kind == ast.InputObject {
		return nil, fmt.Errorf("schema change %s: input type %s cannot be the type of a field", c, named.Name)
	}
	f := *def.Fields[i]
	f.Type = typ
	def.Fields[i] = &f
	return schema, nil
}

var graphqlName = regexp.MustCompile(`^[_A-Za-z][_0-9A-Za-z]*$`)

// parseType reads a GraphQL type reference: Name, [Type] and Type!.
func parseType(s string) (*ast.Type, error) {
	s = strings.TrimSpace(s)
	inner, nonNull := strings.CutSuffix(s, "!")
	inner = strings.TrimSpace(inner)
	var t *ast.Type
	if elem, ok := strings.CutPrefix(inner, "["); ok {
		elem, ok = strings.CutSuffix(elem, "]")
		if !ok {
			return nil, fmt.Errorf("type %q: unclosed [", s)
		}
		e, err := parseType(elem)
		if err != nil {
			return nil, err
		}
		t = ast.ListType(e, nil)
	} else if graphqlName.MatchString(inner) {
		t = ast.NamedType(inner, nil)
	} else {
		return nil, fmt.Errorf("type %q is not a GraphQL type such as String, Int!, [String!]", s)
	}
	t.NonNull = nonNull
	return t, nil
}
