package sqlstore

import (
	"fmt"
	"iter"
	"strings"
)

// where is a builder of a WHERE clause with numbered placeholders, which both SQLite
// and PostgreSQL accept.
type where struct {
	conditions []string
	args       []any
}

// add appends a condition in which each "?" stands for the next argument.
func (w *where) add(condition string, args ...any) {
	for _, arg := range args {
		w.args = append(w.args, arg)
		condition = strings.Replace(condition, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conditions = append(w.conditions, condition)
}

// arg appends one argument and returns its placeholder.
func (w *where) arg(value any) string {
	w.args = append(w.args, value)
	return fmt.Sprintf("$%d", len(w.args))
}

func (w *where) String() string {
	if len(w.conditions) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conditions, " AND ")
}

// visibleTo restricts rows to accounts that userID is a member of. An empty
// userID adds nothing, which is how a superuser lists every account.
func (w *where) visibleTo(column, userID string) {
	if userID == "" {
		return
	}
	w.add(column+" IN (SELECT account_id FROM account_members WHERE user_id = ?)", userID)
}

// likePattern escapes LIKE wildcards in a search term and wraps it in %.
func likePattern(term string) string {
	replacer := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + strings.ToLower(replacer.Replace(term)) + "%"
}

// orderBy maps an ordering parameter ("name" or "-name") to SQL, using the
// allowed map from parameter name to column. An id tie-breaker keeps pages
// stable.
func orderBy(ordering, fallback string, allowed map[string]string, idColumn string) (string, error) {
	if ordering == "" {
		ordering = fallback
	}
	direction := "ASC"
	name := ordering
	if strings.HasPrefix(ordering, "-") {
		direction, name = "DESC", ordering[1:]
	}
	column, ok := allowed[name]
	if !ok {
		return "", fmt.Errorf("unknown ordering %q", ordering)
	}
	return fmt.Sprintf(" ORDER BY %s %s, %s %s", column, direction, idColumn, direction), nil
}

func limitOffset(limit, offset int) string {
	if limit <= 0 {
		limit = 100
	}
	if offset < 0 {
		offset = 0
	}
	return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, offset)
}

// maxRowsPerStatement caps the rows of one multi-row statement, well below
// the number of parameters either database accepts in one statement.
const maxRowsPerStatement = 128

// rowChunks splits n rows into chunks whose sizes are powers of two, largest
// first, none above maxRowsPerStatement. Statements built per chunk then
// come in a few distinct texts, which the statement caches of both
// databases keep compiled.
func rowChunks(n int) []int {
	var sizes []int
	for size := maxRowsPerStatement; n > 0; size /= 2 {
		for n >= size {
			sizes = append(sizes, size)
			n -= size
		}
	}
	return sizes
}

// chunked yields items in the chunks of rowChunks, in order.
func chunked[T any](items []T) iter.Seq[[]T] {
	return func(yield func([]T) bool) {
		rest := items
		for _, size := range rowChunks(len(items)) {
			if !yield(rest[:size]) {
				return
			}
			rest = rest[size:]
		}
	}
}

// valuesRows returns the VALUES rows of a multi-row INSERT of rows rows
// with width columns each, whose arguments are all of the statement's, in
// order. PostgreSQL gets numbered placeholders from $1. SQLite gets plain
// "?": it looks a numbered placeholder up by name, one at a time, which
// costs time that grows with the square of the number of placeholders.
func (s *Store) valuesRows(rows, width int) string {
	var b strings.Builder
	n := 0
	for row := range rows {
		if row > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for column := range width {
			if column > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(s.typed(n, ""))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// inList appends ids to w as the placeholders of an IN list, repeating the
// last id up to a power of two, so that lists of similar length share one
// statement text. It returns the list in parentheses.
func (w *where) inList(ids []string) string {
	size := 1
	for size < len(ids) {
		size *= 2
	}
	placeholders := make([]string, size)
	for i := range size {
		placeholders[i] = w.arg(ids[min(i, len(ids)-1)])
	}
	return "(" + strings.Join(placeholders, ", ") + ")"
}
