package main

import (
	"fmt"
	"strings"

	"github.com/smallsso/provider/provider"
)

// mfaConfig is the mfa: section of config.yaml: the multi-factor policy.
type mfaConfig struct {
	// RequiredForGroups: people in these groups must prove a second
	// factor at every sign-in, and enrol one at their next sign-in if
	// they have none.
	RequiredForGroups []string `yaml:"required_for_groups"`
	// WebAuthn is the passkeys' relying party (passkeysconfig.go).
	WebAuthn webauthnConfig `yaml:"webauthn"`
}

// check reports bad entries under their key path.
func (m mfaConfig) check(add func(key, format string, args ...any)) {
	seen := map[string]int{}
	for i, g := range m.RequiredForGroups {
		key := fmt.Sprintf("mfa.required_for_groups[%d]", i)
		switch j, dup := seen[g]; {
		case strings.TrimSpace(g) == "":
			add(key, "must be a group name, not empty")
		case g != strings.TrimSpace(g):
			add(key, "%q has spaces around the group name", g)
		case dup:
			add(key, "%q is already listed at mfa.required_for_groups[%d]", g, j)
		}
		seen[g] = i
	}
}

// providerConfig is the policy as the provider takes it.
func (m mfaConfig) providerConfig() provider.MFAConfig {
	return provider.MFAConfig{RequiredForGroups: m.RequiredForGroups, WebAuthnRPID: m.WebAuthn.RPID}
}
