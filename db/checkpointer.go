package db

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Checkpointer checkpoints the WAL in a goroutine and a connection of its
// own while the writer goes on: a bulk import's writer spent about a tenth
// of its time copying the WAL into the database at commits (an `auto`
// checkpoint runs inside the commit that crosses AutoCheckpointPages).
//
// The WAL only starts over when a write transaction begins with every
// frame copied, so the writer calls Ready after each commit: past
// AutoCheckpointPages it waits for a checkpoint of everything committed,
// and the next transaction starts the WAL over. The checkpoints are never
// more than one transaction behind, so the WAL holds at most its limit and
// two transactions, as with auto checkpoints (which allow one).
type Checkpointer struct {
	w     *sql.DB // the writer, whose auto checkpoints are off while this runs
	conn  *sql.Conn
	limit int64 // frames: AutoCheckpointPages
	mu    sync.Mutex
	cond  *sync.Cond
	want  int64 // commits the writer reported
	done  int64 // commits a finished checkpoint covered
	log   int64 // frames in the WAL at the last checkpoint
	err   error // a checkpoint's failure; the goroutine has stopped
	stop  chan struct{}
	exit  chan struct{}
}

// Checkpointer starts checkpointing d in the background and turns the
// writer's auto checkpoints off until Close. With checkpoints external
// (NoAutoCheckpoint) it returns nil, and a nil Checkpointer does nothing.
func (d *DB) Checkpointer(ctx context.Context) (*Checkpointer, error) {
	if d.noAutoCheckpoint {
		return nil, nil
	}
	conn, err := d.R.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("start checkpoints: %w", err)
	}
	if _, err := d.W.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start checkpoints: %w", err)
	}
	c := &Checkpointer{w: d.W, conn: conn, limit: AutoCheckpointPages, stop: make(chan struct{}), exit: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run(context.WithoutCancel(ctx))
	return c, nil
}

func (c *Checkpointer) run(ctx context.Context) {
	defer close(c.exit)
	for {
		c.mu.Lock()
		for c.want == c.done && !c.stopping() {
			c.cond.Wait()
		}
		gen := c.want
		c.mu.Unlock()
		if c.stopping() {
			return
		}
		var busy, log, copied int64
		err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
		c.mu.Lock()
		c.done, c.log = gen, log
		if err != nil {
			c.err = fmt.Errorf("checkpoint: %w", err)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (c *Checkpointer) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// Committed tells the checkpointer the writer committed.
func (c *Checkpointer) Committed() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.want++
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Ready waits until the checkpoint of the commit before the last is done
// (usually it is: it ran while the writer wrote the last), and, when the
// WAL has grown past its limit, the checkpoint of the last too, so that the
// next transaction starts the WAL over. It returns a checkpoint's failure
// (an I/O error, which the writer's own writes would meet too).
func (c *Checkpointer) Ready() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && (c.done < c.want-1 || c.log > c.limit && c.done < c.want) {
		c.cond.Wait()
	}
	return c.err
}

// Close stops the goroutine and gives the writer its auto checkpoints back.
func (c *Checkpointer) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	close(c.stop)
	c.cond.Broadcast()
	c.mu.Unlock()
	<-c.exit
	err := c.conn.Close()
	if _, rerr := c.w.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", AutoCheckpointPages)); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("stop checkpoints: %w", err)
	}
	return nil
}
