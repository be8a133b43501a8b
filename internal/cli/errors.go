// Package cli holds the logic behind kiln's commands (cmd/kiln), kept out of
// package main so that it can be reused and tested: loading inputs, writing
// outputs, inspecting models, exit codes.
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// UsageError marks a mistake in the command line (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef makes a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// ExitCode maps an error returned by a command to the process exit code:
// 0 for none, 2 for usage errors, 1 for everything else.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var u *UsageError
	// cobra reports unknown commands with plain errors.
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command ") {
		return 2
	}
	return 1
}

// ExactArgs is cobra.ExactArgs with a usage error that names the arguments.
func ExactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return Usagef("%s expects %s, got %d argument(s)", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}
