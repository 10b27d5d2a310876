package main

import (
	"context"
	"errors"
	"io"
)

// adminCmd runs the user and session commands.
func adminCmd(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New(cmd + ": not available in this build yet")
}
