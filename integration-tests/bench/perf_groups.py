#!/usr/bin/env python3
"""Groups perf samples by frame (for ztunnel-profile.sh).

  perf script -F comm,ip,sym,dso | perf_groups.py [THREAD_NAME_PREFIX]

Each sample of the threads whose name starts with the prefix is put in one group: for a sample in
the kernel, what the thread was doing there (TCP send or receive, epoll wait, eventfd wake-up);
otherwise the leaf frame's library or Java package. Prints each group's share of the samples.
"""
import sys, re, collections
def group_user(sym, dso):
    if 'tcnative' in dso: return 'BoringSSL (tcnative: AES-GCM, TLS records)'
    if 'epoll_x86' in dso: return 'netty epoll JNI'
    if 'libc' in dso:
        if 'mem' in sym: return 'libc memcpy/memmove'
        if 'malloc' in sym or 'free' in sym: return 'libc malloc/free'
        return 'libc other (syscall wrappers)'
    if 'libjvm' in dso:
        return 'JVM runtime (libjvm: GC, JIT, JFR, safepoints)'
    if sym.startswith('Interpreter'): return 'interpreter'
    if 'StubRoutines' in sym: return 'JIT stubs (arraycopy, AES intrinsics...)'
    for pre, g in [('io.netty.handler.ssl', 'netty SslHandler'), ('io.netty.handler.codec.http2', 'netty HTTP/2 codec'),
                   ('io.netty.buffer', 'netty buffers (pool alloc/release)'), ('io.netty.channel.epoll', 'netty epoll channel/loop'),
                   ('io.netty.channel', 'netty pipeline/channel'), ('io.netty.util', 'netty util (promises, tasks)'),
                   ('dev.ambient', 'ours (dev.ambient)'), ('java.', 'JDK classes')]:
        if pre in sym: return g
    if '[JIT]' in dso or 'perf-' in dso: return 'other JIT code'
    return 'other: ' + dso.split('/')[-1][:30]
def group_kernel(stack):
    for fr in stack:
        if 'eventfd' in fr: return 'kernel: eventfd wake-up (cross-thread task)'
        if 'do_epoll_wait' in fr: return 'kernel: epoll_wait (sleep/wake, context switch)'
        if 'tcp_recvmsg' in fr: return 'kernel: TCP receive (copy out)'
        if 'tcp_sendmsg' in fr: return 'kernel: TCP send (copy in, loopback delivery to the peer socket)'
        if 'epoll_ctl' in fr: return 'kernel: epoll_ctl (read interest on/off)'
    for fr in stack:
        s = fr
        if 'epoll_wait' in s or 'epoll_pwait' in s: return 'kernel: epoll_wait (sleep/wake, context switch)'
        if 'sys_futex' in s: return 'kernel: futex'
        if 'eventfd_write' in s or ('sys_write' in s and any('eventfd' in x for x in stack)): return 'kernel: eventfd wake-up (cross-thread task)'
        if 'sys_writev' in s or 'sys_sendmsg' in s or 'sys_sendto' in s or 'sys_write' in s: return 'kernel: TCP send (incl. loopback receive path)'
        if 'sys_read' in s or 'sys_recvfrom' in s or 'sys_recvmsg' in s: return 'kernel: TCP receive'
        if 'sys_epoll_ctl' in s: return 'kernel: epoll_ctl (read interest on/off)'
        if 'sys_setsockopt' in s or 'sys_getsockopt' in s: return 'kernel: sockopt'
        if 'sys_' in s and 'do_syscall' not in s: return 'kernel: other syscall ' + s.split()[1][:30] if len(s.split())>1 else s
    if any('irqentry' in x or 'asm_sysvec' in x or 'page_fault' in x for x in stack): return 'kernel: interrupts/page faults'
    return 'kernel: other'
counts = collections.Counter(); total = 0
comm_filter = sys.argv[1] if len(sys.argv) > 1 else None
cur = None; stack = []
def flush():
    global total
    if cur is None: return
    if comm_filter and not cur.startswith(comm_filter): return
    if not stack: return
    total += 1
    leaf_sym, leaf_dso = stack[0]
    if 'kernel' in leaf_dso:
        counts[group_kernel([s for s, d in stack])] += 1
    else:
        counts[group_user(leaf_sym, leaf_dso)] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); cur = None; stack = []; continue
    if not line.startswith((' ', '\t')):
        cur = line.split()[0]; stack = []; continue
    m = re.match(r'\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$', line)
    if m: stack.append((m.group(1), m.group(2)))
flush()
for g, n in counts.most_common():
    print('%6.1f%%  %s' % (100.0 * n / total, g))
print('samples', total)
