package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/provider/buildinfo"
)

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and build settings",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bi := buildinfo.Read()
			commit := bi.ShortCommit()
			if bi.CommitTime != "" {
				commit += " (" + bi.CommitTime + ")"
			}
			if bi.Modified {
				commit += ", with uncommitted changes"
			}
			fmt.Fprintf(e.stdout, "provider %s\ncommit:  %s\ngo:      %s %s\nbuild:   %s\n",
				bi.Version, commit, bi.GoVersion, bi.Platform, bi.Flags())
			return nil
		},
	}
}
