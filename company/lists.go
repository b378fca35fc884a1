package company

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chwatch/chwatch/db"
)

// listTable is a table of per-company items that a REST list replaces
// whole (officers, pscs), with the statements that do it. The table is
// spelt out in each statement's literal, so ownership can be read.
type listTable struct {
	what    string // its items, for errors ("officers")
	columns int    // values per row
	del     string // deletes the company's rows whose id the list (a JSON array) lacks
	insert  string // INSERT INTO ... VALUES, the rows to follow
	upsert  string // the ON CONFLICT clause after them
}

// newListTable builds the statements of a list table from its DELETE, the
// start of its INSERT ("INSERT INTO officers"), its item key column and
// its columns in the order of a row's values.
func newListTable(what, del, insertInto, id string, columns ...string) listTable {
	cols := strings.Join(columns, ", ")
	return listTable{
		what:    what,
		columns: len(columns),
		del:     del,
		insert:  insertInto + " (" + cols + ") VALUES ",
		upsert: " ON CONFLICT (company_number, " + id + ") DO UPDATE SET (" + cols + ") = (excluded." +
			strings.Join(columns, ", excluded.") + ")",
	}
}

// itemsPerInsert keeps a statement well under SQLite's limit on parameters.
const itemsPerInsert = 50

// replaced is what replaceListTx did.
type replaced struct {
	written bool
	kept    int   // distinct items written
	removed int64 // rows deleted because the list no longer has them
}

// replaceListTx makes items the whole list of company number's rows in t,
// inside the caller's write transaction: rows the list no longer has are
// deleted, every item is upserted with the values row gives it (in
// t.columns' order). Whether the company is still in strike-off is checked
// in the same transaction: a list that arrives after the company left (or
// for a company chwatch does not hold) writes nothing, so a late result
// cannot resurrect rows that leaving deleted. Items with the same id are
// written once, the first kept.
func replaceListTx[T any](ctx context.Context, tx db.Querier, t listTable, number string, items []T, id func(T) string, row func([]any, T) []any) (replaced, error) {
	var out replaced
	if ok, err := inStrikeOffTx(ctx, tx, number); err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("replace %s of %s: %w", t.what, number, err)
		}
		return out, err
	}
	seen := make(map[string]bool, len(items))
	keep := make([]T, 0, len(items))
	ids := make([]string, 0, len(items))
	for _, it := range items {
		k := id(it)
		if k == "" {
			return out, fmt.Errorf("replace %s of %s: an item has no id", t.what, number)
		}
		if !seen[k] {
			seen[k] = true
			keep = append(keep, it)
			ids = append(ids, k)
		}
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return out, fmt.Errorf("replace %s of %s: %w", t.what, number, err)
	}
	res, err := tx.ExecContext(ctx, t.del, number, string(list))
	if err != nil {
		return out, fmt.Errorf("replace %s of %s: delete old rows: %w", t.what, number, err)
	}
	out.written = true
	out.removed, _ = res.RowsAffected()

	values := "(" + strings.Repeat("?,", t.columns-1) + "?)"
	args := make([]any, 0, itemsPerInsert*t.columns)
	for start := 0; start < len(keep); start += itemsPerInsert {
		chunk := keep[start:min(start+itemsPerInsert, len(keep))]
		args = args[:0]
		for _, it := range chunk {
			args = row(args, it)
		}
		q := t.insert + strings.Repeat(values+",", len(chunk)-1) + values + t.upsert
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return out, fmt.Errorf("replace %s of %s: write %d rows: %w", t.what, number, len(chunk), err)
		}
		out.kept += len(chunk)
	}
	return out, nil
}
