package sqlstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRowChunks(t *testing.T) {
	t.Parallel()
	require.Empty(t, rowChunks(0))
	require.Equal(t, []int{1}, rowChunks(1))
	require.Equal(t, []int{64, 32, 4}, rowChunks(100))
	require.Equal(t, []int{128, 128, 32, 8, 2, 1}, rowChunks(299))
	for n := range 1000 {
		sum := 0
		for _, size := range rowChunks(n) {
			require.LessOrEqual(t, size, maxRowsPerStatement)
			require.Zero(t, size&(size-1), "%d is a power of two", size)
			sum += size
		}
		require.Equal(t, n, sum)
	}
}

func TestChunkedKeepsOrder(t *testing.T) {
	t.Parallel()
	items := make([]int, 300)
	for i := range items {
		items[i] = i
	}
	var sizes, all []int
	for chunk := range chunked(items) {
		sizes = append(sizes, len(chunk))
		all = append(all, chunk...)
	}
	require.Equal(t, rowChunks(300), sizes)
	require.Equal(t, items, all)
}

func TestValuesRowsAndInList(t *testing.T) {
	t.Parallel()
	postgres := &Store{dialect: DialectPostgres}
	require.Equal(t, "($1, $2), ($3, $4), ($5, $6)", postgres.valuesRows(3, 2))
	require.Equal(t, "$7::uuid", postgres.typed(7, "uuid"))
	sqlite := &Store{dialect: DialectSQLite}
	require.Equal(t, "(?, ?), (?, ?)", sqlite.valuesRows(2, 2))
	require.Equal(t, "?", sqlite.typed(7, "uuid"))

	var w where
	w.add("a = ?", "x")
	require.Equal(t, "($2, $3, $4, $5)", w.inList([]string{"p", "q", "r"}))
	require.Equal(t, []any{"x", "p", "q", "r", "r"}, w.args, "the last id fills the list up to a power of two")
	require.Equal(t, "($6)", w.inList([]string{"s"}))
}
