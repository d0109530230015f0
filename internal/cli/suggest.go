package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// maxDistance is how many edits a typo may be from a command or flag
// name for "did you mean".
const maxDistance = 2

// addSuggestions makes typos in command and flag names answer with the
// names meant.
func addSuggestions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		// Each command suggests its own subcommands.
		c.SuggestionsMinimumDistance = maxDistance
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		var missing *pflag.NotExistError
		if !errors.As(err, &missing) {
			return err
		}
		if s := flagSuggestions(cmd, missing); len(s) > 0 {
			return fmt.Errorf("%w\n\nDid you mean this?\n\t%s", err, strings.Join(s, "\n\t"))
		}
		return fmt.Errorf("%w\nRun '%s --help' for its flags.", err, cmd.CommandPath())
	})
}

// unknownCommand is the Args of a command with subcommands: an argument
// there is a subcommand that does not exist, maybe a typo of one.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		return fmt.Errorf("%s\n\nDid you mean this?\n\t%s", msg, strings.Join(s, "\n\t"))
	}
	return fmt.Errorf("%s\nRun '%s --help' for its commands.", msg, cmd.CommandPath())
}

// flagSuggestions are the flags of cmd close to the one given.
func flagSuggestions(cmd *cobra.Command, missing *pflag.NotExistError) []string {
	name := missing.GetSpecifiedName()
	if name == "" {
		// An unknown shorthand: -x has no neighbours worth naming.
		return nil
	}
	type candidate struct {
		name string
		d    int
	}
	var found []candidate
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		d := distance(strings.ToLower(name), f.Name)
		if d <= maxDistance || strings.HasPrefix(f.Name, name) {
			found = append(found, candidate{"--" + f.Name, d})
		}
	})
	slices.SortFunc(found, func(a, b candidate) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, 0, len(found))
	for _, c := range found {
		out = append(out, c.name)
	}
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
