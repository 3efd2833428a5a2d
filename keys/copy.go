package keys

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// Copy copies every key of from (its material and its manifest entry:
// kid, alg, created, activates_at, retired_at, verify_until) and every
// named secret into to, for `provider migrate-storage`. The "provider"
// secret is among them, so opaque tokens HMAC'd with it stay valid.
//
// to must be empty, or hold exactly what from holds (copying twice is
// fine): Copy refuses, before writing anything, a destination with other
// keys or with a secret of the same name and another value. Secrets only
// the destination has are left alone. from is read under its write lock,
// so a rotation in another process is seen whole or not at all.
func Copy(from, to Vault) error {
	var (
		src      manifest
		material = map[string][]byte{}
		signers  = map[string]crypto.Signer{}
	)
	_, err := from.Update(func(data []byte, readKey func(string) ([]byte, error)) ([]byte, map[string][]byte, []string, error) {
		src, material, signers = manifest{}, map[string][]byte{}, map[string]crypto.Signer{}
		if data == nil {
			return nil, nil, nil, nil
		}
		man, err := parseManifest(from, data)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, e := range man.Keys {
			raw, err := readKey(e.ID)
			if err != nil {
				return nil, nil, nil, err
			}
			k, err := parseKey(from, e, func(string) ([]byte, error) { return raw, nil })
			if err != nil {
				return nil, nil, nil, err
			}
			material[e.ID], signers[e.ID] = raw, k.signer
		}
		src = man
		return nil, nil, nil, nil
	})
	if err != nil {
		return fmt.Errorf("keys: copy: read the source: %w", err)
	}
	names, err := from.SecretNames()
	if err != nil {
		return fmt.Errorf("keys: copy: list the source's secrets: %w", err)
	}
	slices.Sort(names)
	secrets := make(map[string][]byte, len(names))
	for _, name := range names {
		s, err := from.ReadSecret(name)
		if err == nil {
			err = checkSecret(from, name, s)
		}
		if err != nil {
			return fmt.Errorf("keys: copy: %w", err)
		}
		secrets[name] = s
	}

	if d, ok := to.(*dirVault); ok {
		if err := d.prepare(); err != nil {
			return err
		}
	}
	for _, name := range names {
		have, err := to.ReadSecret(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("keys: copy: %w", err)
		case !bytes.Equal(have, secrets[name]):
			return fmt.Errorf("keys: copy: the destination already has a different %q secret; copy only into an empty keyring", name)
		}
	}
	_, err = to.Update(func(data []byte, readKey func(string) ([]byte, error)) ([]byte, map[string][]byte, []string, error) {
		var dst manifest
		if data != nil {
			var err error
			if dst, err = parseManifest(to, data); err != nil {
				return nil, nil, nil, err
			}
		}
		if len(dst.Keys) > 0 {
			if err := sameKeys(to, src, signers, dst, readKey); err != nil {
				return nil, nil, nil, err
			}
			return nil, nil, nil, nil // already copied
		}
		if len(src.Keys) == 0 {
			return nil, nil, nil, nil
		}
		next, err := encodeManifest(src.Keys)
		if err != nil {
			return nil, nil, nil, err
		}
		return next, material, nil, nil
	})
	if err != nil {
		return fmt.Errorf("keys: copy: %w", err)
	}
	for _, name := range names {
		got, err := to.CreateSecret(name, secrets[name])
		if err != nil {
			return fmt.Errorf("keys: copy: %w", err)
		}
		if !bytes.Equal(got, secrets[name]) {
			return fmt.Errorf("keys: copy: the destination already has a different %q secret; copy only into an empty keyring", name)
		}
	}
	return nil
}

// sameKeys says whether the destination's keys are the source's.
func sameKeys(to Vault, src manifest, signers map[string]crypto.Signer, dst manifest, readKey func(string) ([]byte, error)) error {
	differ := fmt.Errorf("the destination already holds other signing keys (%d in its manifest, %d to copy); copy only into an empty keyring", len(dst.Keys), len(src.Keys))
	if len(dst.Keys) != len(src.Keys) {
		return differ
	}
	want := make(map[string]entry, len(src.Keys))
	for _, e := range src.Keys {
		want[e.ID] = e
	}
	for _, e := range dst.Keys {
		w, ok := want[e.ID]
		if !ok || !sameEntry(e, w) {
			return differ
		}
		k, err := parseKey(to, e, readKey)
		if err != nil {
			return err
		}
		pub, ok := k.signer.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(signers[e.ID].Public()) {
			return differ
		}
	}
	return nil
}

func sameEntry(a, b entry) bool {
	return a.ID == b.ID && a.Alg == b.Alg && a.Created.Equal(b.Created) &&
		a.ActivatesAt.Equal(b.ActivatesAt) && a.RetiredAt.Equal(b.RetiredAt) && a.VerifyUntil.Equal(b.VerifyUntil)
}
