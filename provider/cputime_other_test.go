//go:build !unix

package provider_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
