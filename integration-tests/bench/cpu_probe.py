#!/usr/bin/env python3
"""CPU accounting for ztunnel-bench.sh (standard library only).

  cpu_probe.py NETNS SHELL_PID
      Prints one line: "<total> <busy> <ours> <steal> <jit>", all in clock ticks (CLK_TCK):
        total  all CPU time of the machine (every field of /proc/stat's cpu line but guest)
        busy   user + nice + system + irq + softirq
        ours   utime + stime of every process in network namespace NETNS, plus the reaped
               children of SHELL_PID (the benchmark's clients: wrk, iperf3, curl)
        steal  time the hypervisor gave to other guests
        jit    CPU of the JIT compiler threads of the Java processes in NETNS
      With tick-based accounting (no IRQ_TIME_ACCOUNTING) softirq ticks are also charged to the
      task that was running, so busy - ours is what everything else on the machine used.
"""
import os
import sys


def stat_fields(path):
    with open(path) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from "state" on: utime is [11], stime [12]


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ns_ino = os.stat(f"/run/netns/{argv[0]}").st_ino
    shell = argv[1]
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (cpu + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    busy = user + nice + system + irq + softirq
    ours = 0
    jit = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != ns_ino:
                continue
            fields = stat_fields(f"/proc/{pid}/stat")
            ours += int(fields[11]) + int(fields[12])
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read()
                if "Compiler" in comm:
                    t = stat_fields(f"/proc/{pid}/task/{tid}/stat")
                    jit += int(t[11]) + int(t[12])
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    try:
        fields = stat_fields(f"/proc/{shell}/stat")
        ours += int(fields[13]) + int(fields[14])  # cutime, cstime
    except (FileNotFoundError, ValueError):
        pass
    print(total, busy, ours, steal, jit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
