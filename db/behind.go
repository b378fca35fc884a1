package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Behind is a Querier over a StmtCache that can run statements whose
// results nobody reads in a goroutine of its own (ExecBehind), in the order
// they were given, while the caller prepares the next ones. A bulk import
// spends most of its time inside SQLite's inserts and about a tenth
// deciding and building rows; behind, the two overlap.
//
// Every other call first waits until the statements behind have run, so
// reads see every write given before them and the StmtCache is only ever
// used by one goroutine at a time. A statement behind that fails fails
// every later call (and Wait) with its error, so the transaction cannot
// commit over it; the statements after it do not run.
type Behind struct {
	q      *StmtCache
	groups chan *behindGroup // to the goroutine
	free   chan *behindGroup // back from it, at most behindGroups in flight
	cur    *behindGroup      // the group being filled, not given yet
	wg     sync.WaitGroup
	err    error       // the first failure behind; read only after wg.Wait
	failed atomic.Bool // err is set: later statements need not be queued
	exit   chan struct{}
}

// behindGroup is statements handed to the goroutine at once. One at a
// time, the two goroutines woke each other for every statement, and the
// wake-ups (a futex call each) cost what the overlap saved.
type behindGroup struct {
	ops  []behindOp
	vals []any // every op's arguments, one after the other
}

type behindOp struct {
	ctx    context.Context
	query  string
	lo, hi int // the op's arguments in vals
}

// behindGroups groups are in flight at most, groupOps statements each:
// enough that the goroutine always has the next group when it finishes
// one, few enough that their values stay small (a statement of 25
// companies holds 675).
const (
	behindGroups = 3
	groupOps     = 4
)

// NewBehind starts the goroutine that runs q's statements behind. Close
// it before the transaction ends.
func NewBehind(q *StmtCache) *Behind {
	b := &Behind{q: q, groups: make(chan *behindGroup, behindGroups), free: make(chan *behindGroup, behindGroups), exit: make(chan struct{})}
	for range behindGroups {
		b.free <- &behindGroup{}
	}
	go b.run()
	return b
}

func (b *Behind) run() {
	defer close(b.exit)
	for g := range b.groups {
		for _, op := range g.ops {
			if b.err != nil {
				break
			}
			if _, err := b.q.ExecContext(op.ctx, op.query, g.vals[op.lo:op.hi]...); err != nil {
				b.err = fmt.Errorf("%s: %w", statementName(op.query), err)
				b.failed.Store(true)
			}
		}
		clear(g.vals) // let the values go
		clear(g.ops)
		g.vals, g.ops = g.vals[:0], g.ops[:0]
		b.free <- g
		b.wg.Done()
	}
}

// ExecBehind queues query to run after every statement given before it.
// It copies args, so the caller may reuse them at once. The error it
// returns is an earlier statement's failure. It must not be called after
// Close.
func (b *Behind) ExecBehind(ctx context.Context, query string, args ...any) error {
	if b.failed.Load() {
		return b.Wait()
	}
	if b.cur == nil {
		b.cur = <-b.free
	}
	g := b.cur
	g.ops = append(g.ops, behindOp{ctx: ctx, query: query, lo: len(g.vals), hi: len(g.vals) + len(args)})
	g.vals = append(g.vals, args...)
	if len(g.ops) == groupOps {
		b.give()
	}
	return nil
}

// give hands the group being filled to the goroutine.
func (b *Behind) give() {
	if b.cur == nil {
		return
	}
	b.wg.Add(1)
	b.groups <- b.cur
	b.cur = nil
}

// Wait waits until every statement behind has run, and returns the first
// failure among them, named by its statement.
func (b *Behind) Wait() error {
	b.give()
	b.wg.Wait()
	return b.err
}

// statementName is how a failure behind names its statement: its first
// three words, "insert into companies".
func statementName(query string) string {
	w := strings.Fields(query)
	return strings.ToLower(strings.Join(w[:min(3, len(w))], " "))
}

// Close waits for the statements behind and stops the goroutine; the
// error is Wait's. Calls after Close must not run statements behind.
func (b *Behind) Close() error {
	err := b.Wait()
	select {
	case <-b.exit:
	default:
		close(b.groups)
		<-b.exit
	}
	return err
}

// ExecContext runs query after the statements behind.
func (b *Behind) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := b.Wait(); err != nil {
		return nil, err
	}
	return b.q.ExecContext(ctx, query, args...)
}

// QueryContext runs query after the statements behind.
func (b *Behind) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := b.Wait(); err != nil {
		return nil, err
	}
	return b.q.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query after the statements behind. A failure behind
// cannot show in the row; it stays for the next call and for Wait, which
// every commit goes through.
func (b *Behind) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	b.Wait() // its error stays in b.err
	return b.q.QueryRowContext(ctx, query, args...)
}
