package db

import (
	"context"
	"database/sql"
)

// StmtCache is a Querier over one transaction that prepares each distinct
// query once and reuses it: in a batch of thousands of events, SQLite parses
// each statement once instead of once per event (parsing was 40% of the
// apply loop's time before).
type StmtCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// NewStmtCache wraps tx. The statements close when tx ends.
//
// Its statements run under their context's values but not its
// cancellation: the driver watches a cancellable context with a goroutine
// per statement (and a progress callback), for statements that take
// microseconds. Nothing inside a write
// transaction waits on a lock (it is BEGIN IMMEDIATE), and the transaction
// still ends with its context: once that is done, the next statement fails
// and the transaction rolls back. Only a statement already running is not
// interrupted mid-way.
func NewStmtCache(tx *sql.Tx) *StmtCache {
	return &StmtCache{tx: tx, stmts: map[string]*sql.Stmt{}}
}

func (c *StmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	s, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = s
	return s, nil
}

// ExecContext runs a prepared query.
func (c *StmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(context.WithoutCancel(ctx), args...)
}

// QueryContext runs a prepared query.
func (c *StmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(context.WithoutCancel(ctx), args...)
}

// QueryRowContext runs a prepared query for one row. A failure to prepare
// shows as the row's error, as it would without the cache.
func (c *StmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(context.WithoutCancel(ctx), args...)
}
