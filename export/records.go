package export

import (
	"context"
	"fmt"

	"github.com/chwatch/chwatch/db"
)

// Records reads the rows of kind whose column (one of Columns(kind)) equals
// value, through q, in the kind's order: the export's columns and values,
// NULL as nil, so that another form of the same rows (the change feed's
// JSON messages) cannot drift from the CSV. Inside a write transaction q
// sees that transaction's own rows.
func Records(ctx context.Context, q db.Querier, kind Kind, column string, value any) (cols []string, rows [][]any, err error) {
	qq, ok := queries[kind]
	if !ok {
		return nil, nil, fmt.Errorf("export: unknown kind %q: want one of %s", kind, kindList())
	}
	expr := ""
	for _, c := range qq.cols {
		if c.name == column {
			expr = c.expr
		}
	}
	if expr == "" {
		return nil, nil, fmt.Errorf("export %s: no column %q", kind, column)
	}
	text, _ := qq.build(Options{cond: expr + " = ?"})
	r, err := q.QueryContext(ctx, text, value)
	if err != nil {
		return nil, nil, fmt.Errorf("export %s records: %w", kind, err)
	}
	defer r.Close()
	cols = Columns(kind)
	for r.Next() {
		vals := make([]any, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := r.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("export %s records: %w", kind, err)
		}
		rows = append(rows, vals)
	}
	if err := r.Err(); err != nil {
		return nil, nil, fmt.Errorf("export %s records: %w", kind, err)
	}
	return cols, rows, nil
}
