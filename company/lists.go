package company

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chwatch/chwatch/db"
)

// listTable is a table of per-company items that a REST list replaces
// whole: officers, pscs.
type listTable struct {
	name    string // the table
	what    string // its items, for errors ("officers")
	id      string // the item's key column beside company_number
	columns []string
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
	res, err := tx.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE company_number = ? AND "+t.id+" NOT IN (SELECT value FROM json_each(?))", number, string(list))
	if err != nil {
		return out, fmt.Errorf("replace %s of %s: delete old rows: %w", t.what, number, err)
	}
	out.written = true
	out.removed, _ = res.RowsAffected()

	cols := strings.Join(t.columns, ", ")
	excluded := "excluded." + strings.Join(t.columns, ", excluded.")
	values := "(" + strings.Repeat("?,", len(t.columns)-1) + "?)"
	args := make([]any, 0, itemsPerInsert*len(t.columns))
	for start := 0; start < len(keep); start += itemsPerInsert {
		chunk := keep[start:min(start+itemsPerInsert, len(keep))]
		args = args[:0]
		for _, it := range chunk {
			args = row(args, it)
		}
		q := "INSERT INTO " + t.name + " (" + cols + ") VALUES " + strings.Repeat(values+",", len(chunk)-1) + values +
			" ON CONFLICT (company_number, " + t.id + ") DO UPDATE SET (" + cols + ") = (" + excluded + ")"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return out, fmt.Errorf("replace %s of %s: write %d rows: %w", t.what, number, len(chunk), err)
		}
		out.kept += len(chunk)
	}
	return out, nil
}
