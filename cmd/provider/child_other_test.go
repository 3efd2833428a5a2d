//go:build !linux

package main

// serveChildIfAsked is child_test.go's, which is Linux only.
func serveChildIfAsked() {}
