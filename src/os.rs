//! The process's dealings with the OS that std does not cover: raising the
//! file-descriptor limit, and turning SIGINT/SIGTERM/SIGHUP into a readable pipe the
//! poll loop can watch (the handler only writes one byte; all shutdown work
//! happens in the loop). Linux/Unix only, like mio's epoll/kqueue backends.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    // rlim_t is 32 bits on 32-bit ARM (a Pi running armv7), 64 elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let limit = lim.rlim_cur as u64;
    limit
}

/// 128 bits from the kernel's random source (`getrandom(2)`): upload names.
/// Falls back to the clock and a counter only if the call fails (it does
/// not on any kernel picochat runs on; the names stay unique, not secret).
pub fn random_u128() -> u128 {
    let mut buf = [0u8; 16];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most the given length into our buffer.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n <= 0 {
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let t = crate::clock::unix_millis() as u128;
            let c = COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
            return (t << 64) | c;
        }
        filled += n as usize;
    }
    u128::from_le_bytes(buf)
}

/// Write end of the signal pipe, for the handler (async-signal-safe: an atomic load and write(2)).
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // One byte says which: `h` reload (SIGHUP), `s` stop.
        let byte: &[u8; 1] = if sig == libc::SIGHUP { b"h" } else { b"s" };
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte,
        // which is fine: one pending byte is enough to wake the loop.
        unsafe {
            libc::write(fd, byte.as_ptr().cast(), 1);
        }
    }
}

/// What arrived on the signal pipe since it was last read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// SIGINT or SIGTERM: shut down gracefully.
    pub stop: bool,
    /// SIGHUP: reload the TLS certificate.
    pub reload: bool,
}

/// The read end of the self-pipe; readable once SIGINT, SIGTERM or SIGHUP arrived.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP that write to a fresh pipe.
    pub fn install() -> io::Result<SignalPipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array; we own the fds afterwards.
        let (read, write) = unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) != 0 {
                return Err(io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with our handler and SA_RESTART is valid.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Empties the pipe: which signals had arrived.
    pub fn drain(&self) -> Signals {
        let mut buf = [0u8; 64];
        let mut got = Signals::default();
        loop {
            // SAFETY: reading into a local buffer from our own non-blocking fd.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return got;
            }
            for &b in &buf[..n as usize] {
                if b == b'h' {
                    got.reload = true;
                } else {
                    got.stop = true;
                }
            }
        }
    }
}

/// A listening socket with `SO_REUSEPORT` (and `SO_REUSEADDR`, as std sets
/// it), so several processes on one box can listen on the same port and the
/// kernel spreads new connections across them.
pub fn listen_reuse_port(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: plain socket calls on a descriptor we own; `storage` outlives bind().
    unsafe {
        let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            let ok = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            if ok != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::listen(fd, 1024) != 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = std::net::TcpListener::from(owned);
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

fn sockaddr(addr: std::net::SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the family's fields.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        std::net::SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            (libc::AF_INET, storage, len)
        }
        std::net::SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            (libc::AF_INET6, storage, len)
        }
    }
}
