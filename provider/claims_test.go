package provider_test

import (
	"context"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/provider/userspec"
	"github.com/smallsso/provider/storage"
)

// The address and phone scopes release the OIDC Core §5.4 claims, in the
// ID token and at userinfo; profile carries updated_at as a number.
func TestAddressAndPhoneScopes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	err := ts.Store.UpdateUser(ctx, ts.alice.ID, func(u storage.User) (storage.User, error) {
		u.PhoneNumber, u.PhoneNumberVerified = "+44 20 7946 0000", true
		u.Address = &storage.Address{StreetAddress: "1 Rabbit Hole", Locality: "Oxford", PostalCode: "OX1 1AA", Country: "GB"}
		return u, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := ts.addClient(t, clientspec.Spec{ID: "crm", Secret: "crm-secret-0123456789", ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{webRedirect},
		Scopes:       []string{"openid", "profile", "address", "phone"},
	}})
	rp := newRP(t, ts, "crm", secret, webRedirect, "openid", "profile", "address", "phone")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err := rp.oauth2.Exchange(ctx, f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var fromID map[string]any
	if err := idt.Claims(&fromID); err != nil {
		t.Fatal(err)
	}
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var fromUI map[string]any
	if err := ui.Claims(&fromUI); err != nil {
		t.Fatal(err)
	}
	for where, c := range map[string]map[string]any{"id_token": fromID, "userinfo": fromUI} {
		if c["phone_number"] != "+44 20 7946 0000" || c["phone_number_verified"] != true {
			t.Errorf("%s: phone claims %v %v", where, c["phone_number"], c["phone_number_verified"])
		}
		addr, _ := c["address"].(map[string]any)
		if addr["street_address"] != "1 Rabbit Hole" || addr["locality"] != "Oxford" || addr["country"] != "GB" || addr["postal_code"] != "OX1 1AA" {
			t.Errorf("%s: address %v", where, c["address"])
		}
		if _, ok := addr["region"]; ok {
			t.Errorf("%s: empty address members must be left out: %v", where, addr)
		}
		if _, ok := c["updated_at"].(float64); !ok {
			t.Errorf("%s: updated_at %v (%T), want a number", where, c["updated_at"], c["updated_at"])
		}
	}

	// Without the scopes, none of it is released.
	rp = newRP(t, ts, "crm", secret, webRedirect, "openid")
	f = rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err = rp.oauth2.Exchange(ctx, f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	ui, err = rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	fromUI = nil
	if err := ui.Claims(&fromUI); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"phone_number", "address", "updated_at"} {
		if _, ok := fromUI[k]; ok {
			t.Errorf("userinfo released %s without its scope: %v", k, fromUI)
		}
	}
}

// Address and phone declared in the config reach the stored user.
func TestSyncUsersAddressAndPhone(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	spec := userspec.User{Username: "carol", Password: "carol-password-123", Profile: storage.Profile{
		PhoneNumber:         "+1 555 0101",
		PhoneNumberVerified: true,
		Address:             &storage.Address{Formatted: "1 Main St\nSpringfield", Country: "US"},
	}}
	if _, err := admin.SyncUsers(context.Background(), ts.Store, []userspec.User{spec}, ts.alice.CreatedAt); err != nil {
		t.Fatal(err)
	}
	u, err := ts.Store.GetUserByUsername(context.Background(), "carol")
	if err != nil {
		t.Fatal(err)
	}
	if u.PhoneNumber != spec.PhoneNumber || !u.PhoneNumberVerified || u.Address == nil || *u.Address != *spec.Address {
		t.Errorf("stored %+v", u)
	}
}
