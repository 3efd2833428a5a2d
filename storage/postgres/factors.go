package postgres

import (
	"context"
	"errors"

	"github.com/smallsso/provider/storage"
)

// TODO(pgfactors helper): the factors table (migration 0004).

var errFactorsTODO = errors.New("factors: not yet implemented on PostgreSQL")

func (s *Store) GetFactors(ctx context.Context, userID string) (storage.Factors, error) {
	return storage.Factors{}, errFactorsTODO
}

func (s *Store) UpdateFactors(ctx context.Context, userID string, fn func(storage.Factors) (storage.Factors, error)) error {
	return errFactorsTODO
}

func (s *Store) DeleteFactors(ctx context.Context, userID string) error { return errFactorsTODO }

func (s *Store) WalkFactors(ctx context.Context, fn func(storage.Factors) error) error {
	return errFactorsTODO
}
