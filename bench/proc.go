package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// clockTicksPerSecond is the unit of the CPU times in /proc/PID/stat.
//
// NOTE: this is USER_HZ, which is 100 on every Linux architecture that Go
// supports; reading it with sysconf(_SC_CLK_TCK) would need cgo.
const clockTicksPerSecond = 100

// ProcStats is the resource use of one process, from /proc.
type ProcStats struct {
	PeakRSSBytes int64   // VmHWM from /proc/PID/status
	CPUSeconds   float64 // utime + stime from /proc/PID/stat
}

// ReadProcStats reads the peak resident set size and the CPU time of the
// process pid. Linux only.
func ReadProcStats(pid int) (ProcStats, error) {
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStats{}, fmt.Errorf("read process status: %w", err)
	}
	defer status.Close()
	rss, err := parseVmHWM(status)
	if err != nil {
		return ProcStats{}, fmt.Errorf("parse /proc/%d/status: %w", pid, err)
	}

	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStats{}, fmt.Errorf("read process stat: %w", err)
	}
	cpu, err := parseCPUSeconds(stat)
	if err != nil {
		return ProcStats{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return ProcStats{PeakRSSBytes: rss, CPUSeconds: cpu}, nil
}

// parseVmHWM returns the VmHWM line of /proc/PID/status in bytes.
func parseVmHWM(r io.Reader) (int64, error) {
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if ok && name == "VmHWM" {
			return parseKilobytes(value)
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM line")
}

// parseKilobytes parses a /proc value such as "  123456 kB" into bytes.
func parseKilobytes(value string) (int64, error) {
	fields := strings.Fields(value)
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, fmt.Errorf("invalid size %q: want a number of kB", strings.TrimSpace(value))
	}
	kb, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", strings.TrimSpace(value), err)
	}
	return kb * 1024, nil
}

// parseCPUSeconds returns utime + stime of a /proc/PID/stat line in
// seconds. The command name in brackets may contain spaces and brackets, so
// the fields are counted from the last ')'.
func parseCPUSeconds(stat []byte) (float64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	// Fields after the name start at field 3 (state); utime and stime are
	// fields 14 and 15 in proc(5).
	fields := strings.Fields(string(stat[end+1:]))
	const utimeIndex, stimeIndex = 14 - 3, 15 - 3
	if len(fields) <= stimeIndex {
		return 0, fmt.Errorf("got %d fields after the command name, want at least %d", len(fields), stimeIndex+1)
	}
	utime, err := strconv.ParseUint(fields[utimeIndex], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid utime: %w", err)
	}
	stime, err := strconv.ParseUint(fields[stimeIndex], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid stime: %w", err)
	}
	return float64(utime+stime) / clockTicksPerSecond, nil
}

// Machine describes the computer a benchmark ran on.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemoryBytes int64  `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
}

// ReadMachine describes this computer from the Go runtime, /proc/cpuinfo and
// /proc/meminfo. Fields that cannot be read stay empty.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.CPUModel = parseCPUModel(f)
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		m.MemoryBytes, _ = parseMemTotal(f)
		f.Close()
	}
	return m
}

// parseCPUModel returns the first "model name" of /proc/cpuinfo, or "".
func parseCPUModel(r io.Reader) string {
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// parseMemTotal returns the MemTotal line of /proc/meminfo in bytes.
func parseMemTotal(r io.Reader) (int64, error) {
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if ok && name == "MemTotal" {
			return parseKilobytes(value)
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal line")
}
