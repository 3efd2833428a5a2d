package provider

import (
	"context"
	"net/http"

	"github.com/ory/fosite"
)

// cappedErrors is the composed fosite provider with every error it writes
// passed through printableError first: whichever handler writes an error
// (token, revocation, introspection, PAR, authorize), its
// error_description is printable and bounded, even where a fosite hint
// quotes a request value.
type cappedErrors struct {
	*fosite.Fosite
}

func (c cappedErrors) WriteAuthorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	c.Fosite.WriteAuthorizeError(ctx, w, ar, printableError(err))
}

func (c cappedErrors) WriteAccessError(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester, err error) {
	c.Fosite.WriteAccessError(ctx, w, ar, printableError(err))
}

func (c cappedErrors) WriteRevocationResponse(ctx context.Context, w http.ResponseWriter, err error) {
	if err != nil {
		err = printableError(err)
	}
	c.Fosite.WriteRevocationResponse(ctx, w, err)
}

func (c cappedErrors) WriteIntrospectionError(ctx context.Context, w http.ResponseWriter, err error) {
	if err != nil {
		err = printableError(err)
	}
	c.Fosite.WriteIntrospectionError(ctx, w, err)
}

func (c cappedErrors) WritePushedAuthorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	c.Fosite.WritePushedAuthorizeError(ctx, w, ar, printableError(err))
}
