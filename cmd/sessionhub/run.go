package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usage is the text of `sessionhub help`.
const usage = `sessionhub — auth + realtime WebSocket server

usage: sessionhub <command> [arguments]

commands:
  serve [--migrate] [flags]      run the server (flags mirror the environment; serve --help)
  migrate                        apply pending database migrations (DATABASE_URL) and exit
  keys generate                  print a new Ed25519 JWK set for SESSIONHUB_KEYS_FILE
  user add --email E [--name N] [--admin]
                                 create a user; the password is the first line of stdin
  user grant --email E --scope S [--scope S…]
                                 add scopes to a user (new sessions carry them)
  user logout-all --email E      revoke every session of a user
  session create --email E --service NAME [--scope S…]
                                 create a service session; prints its token once on stdout
  session revoke ID              revoke one session
  bench <idle N|revoke|fanout|http> [flags]
                                 load-test a running cluster (bench <scenario> -h)
  healthcheck [--url URL]        exit 0 when the local server's /healthz answers 200
  help                           show this text

With neither REDIS_URL nor DATABASE_URL set, serve runs single-node in memory
(data is lost on restart). The user, session and migrate commands need
DATABASE_URL (and REDIS_URL, so that revocations reach the servers' sockets).
`

// run is the whole program: main only adds the process's environment and
// signal handling, so tests can call run with their own.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return &usageError{err: errors.New("no command given")}
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "migrate":
		return migrateCmd(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return keysCmd(rest, stdout)
	case "healthcheck":
		return healthcheckCmd(ctx, rest, getenv, stderr)
	case "user", "session":
		return adminCmd(ctx, cmd, rest, getenv, stdin, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, getenv, stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return &usageError{err: fmt.Errorf("unknown command %q", cmd)}
}

// usageError is a wrong command line or a bad setting: exit code 2.
type usageError struct {
	err error
	// quiet: the flag package already printed the problem and the usage.
	quiet bool
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// report prints err on one line (and the usage after a command-line
// mistake) and returns the process's exit code: 0 ok, 2 bad command line or
// configuration, 1 anything else.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	var ce *ConfigError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.quiet {
			return 2
		}
		fmt.Fprintf(stderr, "sessionhub: %s\n\n%s", oneLine(err), usage)
		return 2
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "sessionhub: %s\n", oneLine(err))
		return 2
	}
	fmt.Fprintf(stderr, "sessionhub: %s\n", oneLine(err))
	return 1
}

// oneLine keeps an error on one line whatever a library put in it.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}
