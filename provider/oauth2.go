package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/token/jwt"
)

// The grants and endpoints this provider supports, in one list. Implicit,
// hybrid and the password grant are deliberately absent (RFC 9700 §2.1.2,
// §2.4): a client can only use what is composed here.
var handlerFactories = []compose.Factory{
	compose.OAuth2AuthorizeExplicitFactory,
	compose.OAuth2RefreshTokenGrantFactory,
	compose.OAuth2ClientCredentialsGrantFactory,
	compose.OpenIDConnectExplicitFactory,
	compose.OpenIDConnectRefreshFactory,
	compose.OAuth2PKCEFactory,
	compose.OAuth2TokenIntrospectionFactory,
	compose.OAuth2TokenRevocationFactory,
}

// signingAlg is the ID token algorithm: RS256 is the OIDC baseline every
// relying party supports.
const signingAlg = "RS256"

func newOAuth2(cfg Config, store *fositeStore, keys KeySource, secret []byte) fosite.OAuth2Provider {
	fc := &fosite.Config{
		IDTokenIssuer:                  cfg.Issuer,
		AccessTokenIssuer:              cfg.Issuer,
		TokenURL:                       cfg.Issuer + "/token",
		AccessTokenLifespan:            cfg.AccessTokenLifespan,
		RefreshTokenLifespan:           cfg.RefreshTokenLifespan,
		IDTokenLifespan:                cfg.IDTokenLifespan,
		AuthorizeCodeLifespan:          cfg.AuthCodeLifespan,
		GlobalSecret:                   deriveKey(secret, "fosite-hmac"),
		SendDebugMessagesToClients:     false,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:            newSecretHasher(),
		RefreshTokenScopes:             []string{"offline_access"},
		MinParameterEntropy:            fosite.MinParameterEntropy,
	}
	getKey := func(context.Context) (interface{}, error) {
		k, err := keys.Active(signingAlg)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		// fosite signs with go-jose v3; the kid travels in the v3 key.
		return &jose.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"}, nil
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(fc),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(getKey, fc),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: getKey},
	}
	return compose.Compose(fc, store, strategy, handlerFactories...)
}

// deriveKey gives each use of the provider secret its own key, so an HMAC
// made for one purpose is never valid for another.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
