package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/sessionhub/sessionhub/auth"
)

// keysCmd runs `sessionhub keys generate`: it prints a JWK set with one
// fresh Ed25519 key, private part included, for SESSIONHUB_KEYS_FILE. To
// rotate, put the new key first in the file and keep the old one after it
// (it then only verifies) until every token it signed has expired.
func keysCmd(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "generate" {
		return &usageError{err: errors.New("usage: sessionhub keys generate")}
	}
	data, err := auth.GenerateKeySet()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", data)
	return err
}
