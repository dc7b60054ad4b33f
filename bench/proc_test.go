package bench

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sampleStatus = `Name:	datapusher
Umask:	0022
State:	S (sleeping)
VmPeak:	 1871352 kB
VmSize:	 1871352 kB
VmHWM:	   52340 kB
VmRSS:	   48712 kB
Threads:	9
`

func TestParseVmHWM(t *testing.T) {
	t.Parallel()
	rss, err := parseVmHWM(strings.NewReader(sampleStatus))
	require.NoError(t, err)
	require.Equal(t, int64(52340*1024), rss)
}

func TestParseVmHWMMissing(t *testing.T) {
	t.Parallel()
	_, err := parseVmHWM(strings.NewReader("Name:\tkthreadd\nState:\tS (sleeping)\n"))
	require.ErrorContains(t, err, "no VmHWM line")
}

func TestParseVmHWMInvalid(t *testing.T) {
	t.Parallel()
	_, err := parseVmHWM(strings.NewReader("VmHWM:\t12 MB\n"))
	require.ErrorContains(t, err, "want a number of kB")
}

func TestParseCPUSeconds(t *testing.T) {
	t.Parallel()
	// utime is 250 ticks and stime 130; the command name has a space and
	// a ')' in it.
	stat := "4242 (data pusher) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 9 0 123 1871352 " +
		"12178 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	seconds, err := parseCPUSeconds([]byte(stat))
	require.NoError(t, err)
	require.InDelta(t, 3.8, seconds, 1e-9)
}

func TestParseCPUSecondsErrors(t *testing.T) {
	t.Parallel()
	for name, stat := range map[string]string{
		"NoName":      "4242 S 1 2 3",
		"TooShort":    "4242 (datapusher) S 1 4242 4242 0",
		"InvalidTime": "4242 (datapusher) S 1 4242 4242 0 -1 4194560 1234 0 0 0 x 130 0",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := parseCPUSeconds([]byte(stat))
			require.Error(t, err)
		})
	}
}

func TestReadProcStatsSelf(t *testing.T) {
	t.Parallel()
	stats, err := ReadProcStats(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, stats.PeakRSSBytes)
	require.GreaterOrEqual(t, stats.CPUSeconds, 0.0)
}

func TestReadProcStatsNoProcess(t *testing.T) {
	t.Parallel()
	_, err := ReadProcStats(-1)
	require.Error(t, err)
}

func TestParseMemTotal(t *testing.T) {
	t.Parallel()
	total, err := parseMemTotal(strings.NewReader("MemTotal:       24608420 kB\nMemFree:        1234 kB\n"))
	require.NoError(t, err)
	require.Equal(t, int64(24608420*1024), total)
}

func TestParseCPUModel(t *testing.T) {
	t.Parallel()
	cpuinfo := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t: fpu\n"
	require.Equal(t, "Intel(R) Xeon(R) Processor", parseCPUModel(strings.NewReader(cpuinfo)))
	require.Equal(t, "", parseCPUModel(strings.NewReader("processor\t: 0\n")))
}

func TestReadMachine(t *testing.T) {
	t.Parallel()
	m := ReadMachine()
	require.Positive(t, m.CPUs)
	require.Positive(t, m.MemoryBytes)
	require.NotEmpty(t, m.GoVersion)
}
