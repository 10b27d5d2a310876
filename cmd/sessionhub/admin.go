package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/sessions"
)

// adminCmd runs the user and session commands. They work on the same
// Redis + Postgres as the servers (DATABASE_URL, REDIS_URL and the other
// settings from the environment) through the auth package, so they have
// the API's effects: audit rows, revocation events that close sockets.
func adminCmd(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{err: fmt.Errorf("%s needs a subcommand", cmd)}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd+" "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the user's email")
	var scopes scopeList
	var do func(ctx context.Context, a *auth.Server) error

	switch cmd + " " + sub {
	case "user add":
		name := fs.String("name", "", "display name")
		admin := fs.Bool("admin", false, "give the user the admin scope")
		do = func(ctx context.Context, a *auth.Server) error {
			password, err := readPassword(stdin)
			if err != nil {
				return err
			}
			var sc []string
			if *admin {
				sc = []string{"admin"}
			}
			u, err := a.CreateUser(ctx, *email, *name, password, sc)
			if err != nil {
				return cliError(err, *email)
			}
			fmt.Fprintf(stdout, "created user %s <%s> scopes=%q\n", u.ID, u.Email, strings.Join(u.Scopes, " "))
			return nil
		}
	case "user grant":
		fs.Var(&scopes, "scope", "scope to add (repeat, or list after the flags)")
		do = func(ctx context.Context, a *auth.Server) error {
			if len(scopes) == 0 {
				return &usageError{err: errors.New("user grant needs at least one --scope")}
			}
			u, err := a.GrantScopes(ctx, *email, scopes...)
			if err != nil {
				return cliError(err, *email)
			}
			fmt.Fprintf(stdout, "user %s <%s> scopes=%q (new sessions carry them)\n", u.ID, u.Email, strings.Join(u.Scopes, " "))
			return nil
		}
	case "user logout-all":
		do = func(ctx context.Context, a *auth.Server) error {
			n, err := a.LogoutAll(ctx, *email)
			if err != nil {
				return cliError(err, *email)
			}
			fmt.Fprintf(stdout, "revoked %d sessions of <%s>\n", n, *email)
			return nil
		}
	case "session create":
		service := fs.String("service", "", "the worker's name (JWT svc claim)")
		fs.Var(&scopes, "scope", "scope the session carries (repeat, or list after the flags); the user must hold it")
		do = func(ctx context.Context, a *auth.Server) error {
			if *service == "" {
				return &usageError{err: errors.New("session create needs --service NAME")}
			}
			tok, err := a.CreateServiceSession(ctx, *email, *service, scopes)
			if err != nil {
				return cliError(err, *email)
			}
			// The token alone on stdout, once: `TOKEN=$(sessionhub session create …)`.
			fmt.Fprintln(stdout, tok)
			return nil
		}
	case "session revoke":
		do = func(ctx context.Context, a *auth.Server) error {
			if len(scopes) != 1 {
				return &usageError{err: errors.New("usage: sessionhub session revoke ID")}
			}
			id := scopes[0]
			if err := a.RevokeSession(ctx, id); err != nil {
				if errors.Is(err, sessions.ErrNotFound) {
					return fmt.Errorf("no live session %q", id)
				}
				return err
			}
			fmt.Fprintf(stdout, "revoked session %s\n", id)
			return nil
		}
	default:
		return &usageError{err: fmt.Errorf("unknown command %q", cmd+" "+sub)}
	}

	if sub == "revoke" {
		// session revoke takes no flag, only the id, verbatim: a session
		// id is base64url and one in 64 begins with '-'.
		switch {
		case len(rest) == 2 && rest[0] == "--":
			rest = rest[1:]
		case len(rest) == 1 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help"):
			fs.Usage()
			return &usageError{err: flag.ErrHelp, quiet: true}
		}
		scopes = append(scopes, rest...)
	} else {
		// Flags and positional words may be interleaved: positional words
		// are scopes (user grant, session create).
		for {
			if err := fs.Parse(rest); err != nil {
				return &usageError{err: err, quiet: true}
			}
			if fs.NArg() == 0 {
				break
			}
			_ = scopes.Set(fs.Arg(0))
			rest = fs.Args()[1:]
		}
	}
	if sub != "revoke" && *email == "" {
		return &usageError{err: fmt.Errorf("%s %s needs --email", cmd, sub)}
	}
	if sub != "grant" && sub != "create" && sub != "revoke" && len(scopes) > 0 {
		return &usageError{err: fmt.Errorf("unexpected argument %q", scopes[0])}
	}

	a, closeFn, err := openAuth(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	return do(ctx, a)
}

// openAuth builds an auth.Server on the shared stores for a command-line
// tool, from the same environment as serve.
func openAuth(ctx context.Context, getenv func(string) string, stderr io.Writer) (*auth.Server, func(), error) {
	a, b, err := openToolBackends(ctx, getenv, stderr, slog.LevelWarn)
	if err != nil {
		return nil, nil, err
	}
	return a, b.close, nil
}

// openToolBackends is openAuth that also hands back the backends, for tools
// (bench) that create sessions directly in the store. It refuses memory
// mode: an in-memory server shares nothing with this process, so users made
// here would not exist there.
func openToolBackends(ctx context.Context, getenv func(string) string, stderr io.Writer, level slog.Level) (*auth.Server, *backends, error) {
	cfg, err := parseServeConfig(nil, getenv, stderr)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Memory() {
		return nil, nil, &ConfigError{Name: "DATABASE_URL", Err: errNoDatabase}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Migrate = false
	b, err := openBackends(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	tokens, err := newTokens(cfg, log)
	if err != nil {
		b.close()
		return nil, nil, err
	}
	a, err := newAuth(cfg, b, tokens, log, nil, nil)
	if err != nil {
		b.close()
		return nil, nil, err
	}
	return a, b, nil
}

// readPassword reads the first line of stdin, so that a password never
// appears in the shell history or in ps.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: give it as the first line of stdin (e.g. `sessionhub user add --email E < password.txt`)")
	}
	return line, nil
}

// cliError turns the auth errors a command can meet into plain words.
func cliError(err error, email string) error {
	switch {
	case errors.Is(err, auth.ErrUserNotFound):
		return fmt.Errorf("no user with email %q", email)
	case errors.Is(err, auth.ErrEmailTaken):
		return fmt.Errorf("a user with email %q already exists", email)
	case errors.Is(err, auth.ErrWeakPassword):
		return errors.New("the password must be 8 to 1024 characters")
	}
	return err
}

// scopeList is a repeatable string flag.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, " ") }

func (s *scopeList) Set(v string) error {
	*s = append(*s, strings.Fields(v)...)
	return nil
}
