package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMigrateReportsAppliedMigrations(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	migrate := func() string {
		t.Helper()
		cmd := exec.Command(binaryPath, "migrate")
		cmd.Env = append(os.Environ(), "DATAPUSHER_DATA_DIR="+dataDir, "DATABASE_URL=")
		out, err := cmd.Output()
		require.NoError(t, err)
		return string(out)
	}

	require.Regexp(t, `^applied [1-9][0-9]* migrations: 0001_initial\.sql, `, migrate())
	require.Equal(t, "database is up to date\n", migrate())
}
