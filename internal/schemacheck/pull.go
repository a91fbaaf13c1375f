package schemacheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// commentColumn is where a new end-of-line comment starts, as in
// schema.graphql's field lines.
const commentColumn = 49

// liveMark starts the note Pull adds to what it changed or added.
const liveMark = "[live]"

// PullResult is a schema file rewritten from a live schema.
type PullResult struct {
	// Text is the new file.
	Text string
	// Changes says what differs from the file it was made from, one line
	// each; none when Text is the file unchanged.
	Changes []string
}

// Pull rewrites the schema file current (schema.graphql: name is for
// errors) with the live API's definitions of the types, fields, arguments
// and enum values it declares:
//
//   - a field or argument keeps its place and comments and takes the live
//     type; a changed one gets "[live] was <old type>" at the end of its
//     comment;
//   - what the API no longer has is left out; enums and input types get
//     the API's full list of values and fields; an argument the API
//     requires is added;
//   - a type the new definitions need that the file lacks is added at the
//     end, with its fields of scalar and enum types;
//   - the API's fields that the file never declared stay out: the file is
//     the subset prismcache uses, and the simulator serves exactly it.
//
// Descriptions are not written. pulled is the line Pull puts at the end of
// the header when anything changed ("# Pulled from … on …").
func Pull(name, current string, live *ast.Schema, pulled string) (PullResult, error) {
	src, err := readSource(name, current)
	if err != nil {
		return PullResult{}, err
	}
	p := &puller{live: live, have: map[string]bool{}}
	for _, d := range src.defs {
		p.have[d.def.Name] = true
	}
	var kept []*srcDef
	for _, d := range src.defs {
		if p.mergeDef(d) {
			kept = append(kept, d)
		}
	}
	kept = append(kept, p.addMissing(kept)...)
	if len(p.changes) == 0 {
		text := render(src.header, kept, src.footer)
		return PullResult{Text: text}, nil
	}
	header := slices.Clone(src.header)
	i := slices.IndexFunc(header, func(l string) bool { return strings.HasPrefix(l, "# Pulled from ") })
	switch {
	case i >= 0:
		header[i] = pulled
	default:
		// At the end of the header's first block of comments.
		end := slices.Index(header, "")
		if end < 0 {
			end = len(header)
		}
		header = slices.Insert(header, end, "#", pulled)
	}
	text := render(header, kept, src.footer)
	if _, gerr := gqlparser.LoadSchema(&ast.Source{Name: name, Input: text}); gerr != nil {
		return PullResult{}, fmt.Errorf("the pulled schema does not load (nothing written): %w", gerr)
	}
	return PullResult{Text: text, Changes: p.changes}, nil
}

type puller struct {
	live    *ast.Schema
	have    map[string]bool // types the output declares
	changes []string
}

func (p *puller) changed(format string, args ...any) {
	p.changes = append(p.changes, fmt.Sprintf(format, args...))
}

// mergeDef gives d the live definitions; false when the API has no such
// type and d is to be left out.
func (p *puller) mergeDef(d *srcDef) bool {
	name := d.def.Name
	ld := p.live.Types[name]
	if ld == nil || ld.BuiltIn {
		p.changed("%s: the API has no such type; removed", name)
		delete(p.have, name)
		return false
	}
	if ld.Kind != d.def.Kind {
		p.changed("%s: the API has it as %s, not %s; replaced", name, strings.ToLower(string(ld.Kind)), strings.ToLower(string(d.def.Kind)))
		*d = *newDef(p.live, ld, nil)
		mark(&d.trailing, "was "+strings.ToLower(string(d.def.Kind)))
		return true
	}
	switch ld.Kind {
	case ast.Enum:
		p.mergeEnum(d, ld)
	case ast.InputObject:
		p.mergeFields(d, ld, true)
	case ast.Object, ast.Interface:
		p.mergeFields(d, ld, false)
		d.def = &ast.Definition{Kind: ld.Kind, Name: ld.Name, Interfaces: p.known(ld.Interfaces), Position: d.def.Position}
	case ast.Union:
		d.def = &ast.Definition{Kind: ld.Kind, Name: ld.Name, Types: ld.Types, Position: d.def.Position}
	}
	return true
}

func (p *puller) mergeEnum(d *srcDef, ld *ast.Definition) {
	live := map[string]bool{}
	for _, v := range ld.EnumValues {
		live[v.Name] = true
	}
	ours := map[string]bool{}
	for i, line := range d.valueLines {
		kept := line[:0]
		for _, v := range line {
			ours[v.name] = true
			if live[v.name] {
				kept = append(kept, v)
			} else {
				p.changed("%s.%s: the API has no such value; removed", d.def.Name, v.name)
			}
		}
		d.valueLines[i] = kept
	}
	var added []*srcValue
	for _, v := range ld.EnumValues {
		if !ours[v.Name] {
			p.changed("%s.%s: a value the API has; added", d.def.Name, v.Name)
			added = append(added, &srcValue{name: v.Name})
		}
	}
	if len(added) > 0 {
		if d.oneLine || len(d.valueLines) == 0 {
			if len(d.valueLines) == 0 {
				d.valueLines = append(d.valueLines, nil)
			}
			last := len(d.valueLines) - 1
			d.valueLines[last] = append(d.valueLines[last], added...)
			mark(&d.trailing, "values added")
		} else {
			for _, v := range added {
				mark(&v.trailing, "")
				d.valueLines = append(d.valueLines, []*srcValue{v})
			}
		}
	}
	d.valueLines = slices.DeleteFunc(d.valueLines, func(l []*srcValue) bool { return len(l) == 0 })
}

func (p *puller) mergeFields(d *srcDef, ld *ast.Definition, input bool) {
	var kept []*srcField
	for _, sf := range d.fields {
		key := d.def.Name + "." + sf.f.Name
		lf := ld.Fields.ForName(sf.f.Name)
		if lf == nil {
			p.changed("%s: the API has no such field; removed", key)
			continue
		}
		nf := *lf
		if old, now := sf.f.Type.String(), lf.Type.String(); old != now {
			p.changed("%s: %s in schema.graphql, %s in the API", key, old, now)
			if sf.multiLine {
				mark(&sf.closing, "was "+old)
			} else {
				mark(&sf.trailing, "was "+old)
			}
		}
		if dv := valueString(lf.DefaultValue); dv != valueString(sf.f.DefaultValue) {
			p.changed("%s: default %s in the API", key, orNone(dv))
			mark(&sf.trailing, "default was "+orNone(valueString(sf.f.DefaultValue)))
		}
		if dep := deprecationOf(lf.Directives); dep != deprecationOf(sf.f.Directives) {
			p.changed("%s: deprecated in the API", key)
		}
		sf.f = &nf
		sf.args = p.mergeArgs(key, sf, lf)
		kept = append(kept, sf)
	}
	if input {
		for _, lf := range ld.Fields {
			if !slices.ContainsFunc(d.fields, func(sf *srcField) bool { return sf.f.Name == lf.Name }) {
				p.changed("%s.%s: an input field the API has; added", d.def.Name, lf.Name)
				sf := &srcField{f: lf}
				mark(&sf.trailing, "")
				kept = append(kept, sf)
			}
		}
	}
	if len(kept) == 0 {
		// A type needs a field: take the API's, so that the file loads.
		p.changed("%s: the API has none of its fields; it gets the API's", d.def.Name)
		kept = newDef(p.live, ld, p.have).fields
	}
	d.fields = kept
}

func (p *puller) mergeArgs(key string, sf *srcField, lf *ast.FieldDefinition) []*srcArg {
	var out []*srcArg
	for _, sa := range sf.args {
		la := lf.Arguments.ForName(sa.a.Name)
		akey := fmt.Sprintf("%s(%s)", key, sa.a.Name)
		if la == nil {
			p.changed("%s: the API has no such argument; removed", akey)
			continue
		}
		if old, now := sa.a.Type.String(), la.Type.String(); old != now {
			p.changed("%s: %s in schema.graphql, %s in the API", akey, old, now)
			if sf.multiLine {
				mark(&sa.trailing, "was "+old)
			} else {
				mark(&sf.trailing, "("+sa.a.Name+") was "+old)
			}
		}
		if dv := valueString(la.DefaultValue); dv != valueString(sa.a.DefaultValue) {
			p.changed("%s: default %s in the API", akey, orNone(dv))
		}
		sa.a = la
		out = append(out, sa)
	}
	for _, la := range lf.Arguments {
		if la.Type.NonNull && la.DefaultValue == nil && !slices.ContainsFunc(out, func(sa *srcArg) bool { return sa.a.Name == la.Name }) {
			p.changed("%s(%s): an argument the API requires; added", key, la.Name)
			sa := &srcArg{a: la}
			if sf.multiLine {
				mark(&sa.trailing, "")
			} else {
				mark(&sf.trailing, "("+la.Name+") added")
			}
			out = append(out, sa)
		}
	}
	return out
}

// known keeps the names of types the output declares.
func (p *puller) known(names []string) []string {
	var out []string
	for _, n := range names {
		if p.have[n] {
			out = append(out, n)
		}
	}
	return out
}

// addMissing adds the types that the kept definitions refer to and the
// file does not declare, and the ones those refer to in turn.
func (p *puller) addMissing(defs []*srcDef) []*srcDef {
	var added []*srcDef
	queue := slices.Clone(defs)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, name := range referenced(d) {
			if p.have[name] {
				continue
			}
			ld := p.live.Types[name]
			if ld == nil || ld.BuiltIn {
				continue // gqlparser reports it when the result is loaded
			}
			p.have[name] = true
			nd := newDef(p.live, ld, p.have)
			mark(&nd.trailing, "")
			p.changed("%s: a type the new definitions use; added", name)
			added = append(added, nd)
			queue = append(queue, nd)
		}
	}
	return added
}

// referenced lists the named types d's fields, arguments and members use.
func referenced(d *srcDef) []string {
	var out []string
	for _, sf := range d.fields {
		out = append(out, sf.f.Type.Name())
		for _, sa := range sf.args {
			out = append(out, sa.a.Type.Name())
		}
	}
	out = append(out, d.def.Types...)
	out = append(out, d.def.Interfaces...)
	return out
}

// newDef is a definition of the API's that the file did not have. An object
// or interface gets the fields whose types are scalars or enums, or
// declared already (have), so that adding one type does not pull in the
// whole API; an input type, an enum and a union get all of theirs.
func newDef(live *ast.Schema, ld *ast.Definition, have map[string]bool) *srcDef {
	d := &srcDef{def: &ast.Definition{Kind: ld.Kind, Name: ld.Name, Types: ld.Types}}
	switch ld.Kind {
	case ast.Enum:
		for _, v := range ld.EnumValues {
			d.valueLines = append(d.valueLines, []*srcValue{{name: v.Name}})
		}
	case ast.InputObject:
		for _, f := range ld.Fields {
			d.fields = append(d.fields, &srcField{f: f})
		}
	case ast.Object, ast.Interface:
		for _, f := range ld.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if named := f.Type.Name(); have == nil || have[named] || leafType(live, named) {
				sf := &srcField{f: f}
				for _, a := range f.Arguments {
					if a.Type.NonNull && a.DefaultValue == nil {
						sf.args = append(sf.args, &srcArg{a: a})
					}
				}
				d.fields = append(d.fields, sf)
			}
		}
		if len(d.fields) == 0 && len(ld.Fields) > 0 {
			d.fields = append(d.fields, &srcField{f: ld.Fields[0]})
		}
	}
	return d
}

// leafType reports whether the named type is a scalar or an enum, whose
// definitions are small and end the walk.
func leafType(live *ast.Schema, name string) bool {
	d := live.Types[name]
	return d != nil && (d.Kind == ast.Scalar || d.Kind == ast.Enum)
}

// mark adds the [live] note to c.
func mark(c *comment, note string) {
	text := liveMark
	if note != "" {
		text += " " + note
	}
	if c.text == "" {
		c.text = "# " + text
		return
	}
	c.text += "; " + text
}

func valueString(v *ast.Value) string {
	if v == nil {
		return ""
	}
	return v.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func deprecationOf(dl ast.DirectiveList) string {
	d := dl.ForName("deprecated")
	if d == nil {
		return ""
	}
	if a := d.Arguments.ForName("reason"); a != nil && a.Value != nil {
		return "deprecated: " + a.Value.Raw
	}
	return "deprecated"
}

// render writes the model as a schema file.
func render(header []string, defs []*srcDef, footer []string) string {
	var b strings.Builder
	for _, l := range header {
		b.WriteString(l + "\n")
	}
	for i, d := range defs {
		if i > 0 && !d.tight {
			b.WriteString("\n")
		}
		for _, l := range d.leading {
			b.WriteString(l + "\n")
		}
		renderDef(&b, d)
	}
	if len(footer) > 0 {
		b.WriteString("\n")
		for _, l := range footer {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func renderDef(b *strings.Builder, d *srcDef) {
	def := d.def
	switch def.Kind {
	case ast.Scalar:
		line(b, "scalar "+def.Name, d.trailing)
	case ast.Union:
		line(b, "union "+def.Name+" = "+strings.Join(def.Types, " | "), d.trailing)
	case ast.Enum:
		if d.oneLine {
			var names []string
			for _, l := range d.valueLines {
				for _, v := range l {
					names = append(names, v.name)
				}
			}
			line(b, "enum "+def.Name+" { "+strings.Join(names, " ")+" }", d.trailing)
			return
		}
		line(b, "enum "+def.Name+" {", d.trailing)
		for _, l := range d.valueLines {
			for _, c := range l[0].leading {
				b.WriteString(c + "\n")
			}
			names := make([]string, 0, len(l))
			for _, v := range l {
				names = append(names, v.name)
			}
			line(b, "  "+strings.Join(names, " "), l[0].trailing)
		}
		b.WriteString("}\n")
	default:
		kw := "type"
		switch def.Kind {
		case ast.InputObject:
			kw = "input"
		case ast.Interface:
			kw = "interface"
		}
		head := kw + " " + def.Name
		if len(def.Interfaces) > 0 {
			head += " implements " + strings.Join(def.Interfaces, " & ")
		}
		line(b, head+" {", d.trailing)
		for _, sf := range d.fields {
			renderField(b, sf)
		}
		b.WriteString("}\n")
	}
}

func renderField(b *strings.Builder, sf *srcField) {
	for _, c := range sf.leading {
		b.WriteString(c + "\n")
	}
	f := sf.f
	tail := ": " + f.Type.String()
	if f.DefaultValue != nil {
		tail += " = " + f.DefaultValue.String()
	}
	tail += directives(f.Directives)
	if !sf.multiLine || len(sf.args) == 0 {
		args := ""
		if len(sf.args) > 0 {
			parts := make([]string, 0, len(sf.args))
			for _, sa := range sf.args {
				parts = append(parts, argString(sa.a))
			}
			args = "(" + strings.Join(parts, ", ") + ")"
		}
		trailing := sf.trailing
		if sf.closing.text != "" { // its arguments are gone: one line now
			trailing.text = strings.TrimSpace(trailing.text + " " + strings.TrimPrefix(sf.closing.text, "#"))
		}
		line(b, "  "+f.Name+args+tail, trailing)
		return
	}
	line(b, "  "+f.Name+"(", sf.trailing)
	for _, sa := range sf.args {
		for _, c := range sa.leading {
			b.WriteString(c + "\n")
		}
		line(b, "    "+argString(sa.a), sa.trailing)
	}
	line(b, "  )"+tail, sf.closing)
}

func argString(a *ast.ArgumentDefinition) string {
	s := a.Name + ": " + a.Type.String()
	if a.DefaultValue != nil {
		s += " = " + a.DefaultValue.String()
	}
	return s + directives(a.Directives)
}

// directives writes @deprecated, the one directive a field of the file may
// carry.
func directives(dl ast.DirectiveList) string {
	d := dl.ForName("deprecated")
	if d == nil {
		return ""
	}
	if a := d.Arguments.ForName("reason"); a != nil && a.Value != nil {
		return " @deprecated(reason: " + strconv.Quote(a.Value.Raw) + ")"
	}
	return " @deprecated"
}

// line writes code and its end-of-line comment, at the column the comment
// had, or at commentColumn for a new one; two spaces apart when the code
// reaches that far.
func line(b *strings.Builder, code string, c comment) {
	b.WriteString(code)
	if c.text != "" {
		col := c.col
		if col == 0 {
			col = commentColumn
		}
		if pad := col - len(code); pad >= 1 {
			b.WriteString(strings.Repeat(" ", pad))
		} else {
			b.WriteString("  ")
		}
		b.WriteString(c.text)
	}
	b.WriteString("\n")
}
