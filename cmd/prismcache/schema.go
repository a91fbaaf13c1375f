package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/schemacheck"
)

const schemaUsage = `Usage: prismcache schema pull [flags]

Commands:
  pull   rewrite schema.graphql from the live API's introspection

Run "prismcache schema pull -h" for its flags.
`

func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "pull":
		return runSchemaPull(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help"):
		fmt.Fprint(stderr, schemaUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, schemaUsage)
	return errUsage
}

const schemaPullSynopsis = `Reads the schema of the Prismatic API (introspection, with the header Prismatic-Docs-Introspection:
true) and rewrites schema.graphql — the subset of it that prismcache's operations and its simulator
use — with the API's types: a field or argument keeps its place and its comment and takes the API's
type (noted "[live] was <old type>"); what the API no longer has is removed; enums and input types
get all of the API's values and fields, and a type a changed field needs is added. Fields the file
never declared stay out. Run it in the source tree, then go generate ./... (the GraphQL client and
the simulator's server follow), go build ./... and make test.`

func runSchemaPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		out        = "schema.graphql"
		check      bool
		apiURL     = envOr("PRISMATIC_URL", graphql.DefaultURL)
		token      string
		refresh    string
		tenant     = os.Getenv("PRISMATIC_TENANT_ID")
		apiTimeout = time.Minute
	)
	fs := newFlagSet("schema pull [flags]", schemaPullSynopsis,
		"PRISMATIC_REFRESH_TOKEN=… prismcache schema pull --prismatic-url https://app.prismatic.io && go generate ./...",
		stderr)
	fs.Var(typedString{&out, "path"}, "out", "the schema file to rewrite")
	fs.BoolVar(&check, "check", false, "write nothing: list what would change, and exit 1 if anything would")
	fs.Var(typedString{&apiURL, "url"}, "prismatic-url", "Prismatic stack URL (env PRISMATIC_URL)")
	fs.Var(typedString{&token, "token"}, "prismatic-token", "access token (env PRISMATIC_TOKEN)")
	fs.Var(typedString{&refresh, "token"}, "prismatic-refresh-token", "refresh token, exchanged for an access token (env PRISMATIC_REFRESH_TOKEN)")
	fs.Var(typedString{&tenant, "id"}, "prismatic-tenant-id", "tenant to select on the token exchange (env PRISMATIC_TENANT_ID)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	// Secrets from the environment are read after the flags, so that -h
	// never shows them as defaults.
	token, refresh = flagOrEnv(token, "PRISMATIC_TOKEN"), flagOrEnv(refresh, "PRISMATIC_REFRESH_TOKEN")
	current, err := os.ReadFile(out)
	if err != nil {
		return fmt.Errorf("read the schema to rewrite: %w (run it in the source tree, or pass --out)", err)
	}
	api, err := graphql.New(graphql.Options{URL: apiURL, Token: token, RefreshToken: refresh, TenantID: tenant, Timeout: apiTimeout})
	if err != nil {
		return &exitCodeError{code: exitUsage, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, onlineTimeout)
	defer cancel()
	live, err := introspect(ctx, api)
	if err != nil {
		return fmt.Errorf("%w%s", err, apiHint(err, pullConfig(apiURL, refresh)))
	}
	pulled := fmt.Sprintf("# Pulled from %s on %s with prismcache schema pull: the types, nullability and enum values here are that API's.",
		api.Endpoint(), time.Now().UTC().Format("2006-01-02"))
	res, err := schemacheck.Pull(out, string(current), live, pulled)
	if err != nil {
		return err
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(stdout, "%s matches the API at %s: nothing to change\n", out, api.Endpoint())
		return nil
	}
	verb := "changed"
	if check {
		verb = "would change"
	}
	fmt.Fprintf(stdout, "%s %s in %d place(s) to follow %s:\n", out, verb, len(res.Changes), api.Endpoint())
	for _, c := range res.Changes {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	if check {
		return &exitCodeError{code: exitError, err: errors.New("schema.graphql differs from the API (nothing written)")}
	}
	if err := writeFileAtomic(out, []byte(res.Text)); err != nil {
		return err
	}
	if s, gerr := gqlparser.LoadSchema(&ast.Source{Name: out, Input: res.Text}); gerr == nil {
		if _, gerr := gqlparser.LoadQuery(s, graphql.OperationsSource()); gerr != nil {
			fmt.Fprintf(stdout, "\nThe operations this build sends do not validate against it: %v\nChange graphql/operations/*.graphql (and the code that reads them) before go generate ./...\n", gerr)
			return nil
		}
	}
	fmt.Fprintln(stdout, "\nNext: go generate ./... (the GraphQL client and the simulator's server follow), go build ./... and make test.")
	return nil
}

// pullConfig is what apiHint needs to know of the pull's settings.
func pullConfig(url, refresh string) config.Config {
	c := config.Default()
	c.PrismaticURL, c.PrismaticRefreshToken = url, refresh
	return c
}

// writeFileAtomic replaces path with data, or leaves it as it was: the new
// text goes to a file beside it, then takes its name.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
