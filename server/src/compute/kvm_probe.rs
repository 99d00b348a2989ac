//! Does KVM really work on this machine? Found out by running a guest on it.
//!
//! `/dev/kvm` existing proves little: a KVM module is loaded, and libvirt then
//! lists a `kvm` domain type. Guests can still hang under it. The machines Basalt
//! is developed on show how: they are VMs without VT-x/AMD-V whose `/dev/kvm` is
//! `kvm_pvm` (software "PVM" virtualisation), which runs an ordinary guest by
//! trapping and emulating every instruction, about a microsecond each. A guest
//! doing next to nothing (`mov`, `out`, `hlt`) passes there in a fraction of a
//! millisecond; a Linux guest needs minutes to get through its BIOS and
//! decompressor and looks hung. So [`kvm_works`] asks the question that settles
//! it, with a guest that does some real work: does it get anywhere?
//!
//! The probe opens `/dev/kvm`, checks `KVM_GET_API_VERSION` is 12 (the only
//! stable API there ever was), creates a VM (`KVM_CREATE_VM`) with one page of
//! memory at guest-physical `0x1000` (`KVM_SET_USER_MEMORY_REGION`) holding this
//! 16-bit real-mode code:
//!
//! ```text
//! 66 b9 nn nn nn nn   mov ecx, 2^25
//! 66 49               dec ecx          ┐ 2^25 times:
//! 75 fc               jnz -4           ┘ ~67 million instructions
//! b0 42               mov al, 0x42
//! e6 10               out 0x10, al
//! f4                  hlt
//! ```
//!
//! and one vCPU (`KVM_CREATE_VCPU`) starting there in real mode (`cs` base and
//! selector 0, `rip` 0x1000, `rflags` 0x2: only the always-one bit). `KVM_RUN`
//! must then come back with an I/O exit writing 0x42 to port 0x10, and then with
//! `KVM_EXIT_HLT`, before the timeout. A hardware-assisted vCPU runs the loop
//! natively in tens of milliseconds, even nested or on a busy host; emulated
//! one instruction at a time it takes tens of seconds (half a minute on the
//! machines above). That proves the host enters the guest, runs its code at the
//! speed of a CPU, traps its I/O and its halt, and gives the vCPU back. It does
//! not prove that everything a full guest uses works (paging, interrupts, the
//! in-kernel irqchip), but a KVM broken or emulated at its base fails here.
//!
//! The guest runs on a thread of its own, so that a `KVM_RUN` which does not
//! return in time cannot take the caller with it: after the timeout the answer
//! is [`Probe::Hangs`]. The thread is then asked to stop and kicked out of
//! `KVM_RUN` with a signal (a no-op handler for one real-time signal, installed
//! only then; `KVM_RUN` returns `EINTR` on a pending signal). A vCPU stuck where
//! signals do not reach is left behind, detached: it holds the probe's file
//! descriptors (and a core, if it spins) until the process exits, which closes them.
//!
//! The probe runs with the privileges of this process, which is not necessarily
//! the user libvirt runs QEMU as: a `/dev/kvm` this process may not open answers
//! [`Probe::Broken`], and callers then keep to TCG, the safe choice.
//!
//! [`local_kvm`] runs the probe once per process and keeps the answer.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What running a guest on `/dev/kvm` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The guest ran its loop and reached its `hlt` within the timeout.
    Works,
    /// There is no `/dev/kvm`.
    Absent,
    /// A step failed: opening `/dev/kvm`, an ioctl, or the guest exited in a way
    /// it should not have. The message says which.
    Broken(String),
    /// The guest did not reach its `hlt` within the timeout: `KVM_RUN` never
    /// came back, or the guest runs far too slowly to be of use.
    Hangs,
}

impl Probe {
    /// Whether KVM is fit for guests.
    pub fn works(&self) -> bool {
        matches!(self, Probe::Works)
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Works => f.write_str("works (a probe guest ran and halted)"),
            Probe::Absent => f.write_str("absent (no /dev/kvm)"),
            Probe::Broken(why) => write!(f, "broken ({why})"),
            Probe::Hangs => f.write_str("hangs (the probe guest did not halt in time)"),
        }
    }
}

/// How long [`local_kvm`] gives the probe guest: tens of times what its loop
/// needs on hardware-assisted KVM, a fraction of what it needs emulated. Much
/// shorter timeouts (under half a second) risk calling a busy host's KVM hung.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the probe guest (see the module doc) and waits at most `timeout` for it
/// to halt, plus a fraction of a second to kick a stuck vCPU after a timeout.
pub fn kvm_works(timeout: Duration) -> Probe {
    imp::kvm_works(timeout)
}

/// [`kvm_works`] with [`DEFAULT_TIMEOUT`], run once per process; every later
/// call returns the first answer.
pub fn local_kvm() -> &'static Probe {
    static LOCAL: OnceLock<Probe> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let started = Instant::now();
        let probe = kvm_works(DEFAULT_TIMEOUT);
        tracing::info!(result = %probe, elapsed_ms = started.elapsed().as_millis() as u64, "probed /dev/kvm");
        probe
    })
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
    use std::sync::Arc;
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use kvm_bindings::{kvm_regs, kvm_userspace_memory_region};
    use kvm_ioctls::{Kvm, VcpuExit};
    use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

    use super::Probe;

    /// `KVM_GET_API_VERSION`'s answer on every kernel since 2.6.22; anything
    /// else is not the KVM this code speaks.
    const KVM_API_VERSION: i32 = 12;
    /// Where the guest's one page sits in guest-physical memory, and where it starts.
    const GUEST_ADDR: u64 = 0x1000;
    const PAGE_SIZE: usize = 0x1000;
    /// The guest writes `PROBE_BYTE` to `PROBE_PORT` after its loop, then halts.
    const PROBE_PORT: u16 = 0x10;
    const PROBE_BYTE: u8 = 0x42;
    /// The guest's busy loop: 2^25 rounds of `dec ecx; jnz`, ~67 million
    /// instructions; ~10 ms on a 3 GHz core, ~30 s emulated (see the module doc).
    const LOOP_ROUNDS: u32 = 1 << 25;
    const ROUNDS: [u8; 4] = LOOP_ROUNDS.to_le_bytes();
    /// The module doc's program, in 16-bit real mode.
    #[rustfmt::skip]
    const GUEST_CODE: [u8; 15] = [
        0x66, 0xb9, ROUNDS[0], ROUNDS[1], ROUNDS[2], ROUNDS[3], // mov ecx, LOOP_ROUNDS
        0x66, 0x49,                                             // dec ecx
        0x75, 0xfc,                                             // jnz -4 (the dec)
        0xb0, PROBE_BYTE,                                       // mov al, PROBE_BYTE
        0xe6, PROBE_PORT as u8,                                 // out PROBE_PORT, al
        0xf4,                                                   // hlt
    ];
    /// Where KVM may put the three pages of the real-mode TSS it needs on Intel
    /// CPUs without "unrestricted guest" (nested setups among them): just below
    /// the 4 GiB BIOS area, where QEMU and Firecracker put it. Outside our memory.
    const TSS_ADDR: usize = 0xfffb_d000;
    /// The guest makes two exits (the OUT, the HLT); a few more are tolerated
    /// (interrupted runs), an endless stream of them is not.
    const MAX_RUNS: usize = 16;
    /// Which real-time signal kicks a stuck vCPU: SIGRTMIN + this. The C library
    /// and Rust's runtime use none of them; nothing else in Basalt does either.
    const KICK_SIGNAL_OFFSET: i32 = 7;
    /// After a timeout: how many kicks, how far apart, before leaving the thread be.
    const KICKS: usize = 5;
    const KICK_INTERVAL: Duration = Duration::from_millis(50);

    pub(super) fn kvm_works(timeout: Duration) -> Probe {
        let (answer, answered) = mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let spawned = thread::Builder::new().name("kvm-probe".into()).spawn(move || {
            let probe = match run_guest(&thread_stop) {
                Ok(probe) => probe,
                Err(why) => Probe::Broken(why),
            };
            // Nobody listens any more after a timeout; that is fine.
            let _ = answer.send(probe);
        });
        let vcpu_thread = match spawned {
            Ok(handle) => handle,
            Err(e) => return Probe::Broken(format!("spawning the probe thread: {e}")),
        };
        match answered.recv_timeout(timeout) {
            Ok(probe) => probe,
            Err(RecvTimeoutError::Disconnected) => Probe::Broken("the probe thread ended without an answer".into()),
            Err(RecvTimeoutError::Timeout) => {
                stop.store(true, Ordering::SeqCst);
                if !kick(&vcpu_thread, &answered) {
                    tracing::warn!("the KVM probe's vCPU thread is stuck in the kernel; leaving it detached");
                }
                Probe::Hangs
            }
        }
        // Dropping the handle detaches the thread; it has ended unless it is stuck.
    }

    /// Signals the vCPU thread (whose stop flag is set) until it lets go of
    /// `KVM_RUN` and ends, a few times; whether it did.
    fn kick(vcpu_thread: &JoinHandle<()>, answered: &Receiver<Probe>) -> bool {
        extern "C" fn ignore(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
        let signal = SIGRTMIN() + KICK_SIGNAL_OFFSET;
        // Without a handler, the signal's default action would end the process.
        if let Err(e) = register_signal_handler(signal, ignore) {
            tracing::warn!(error = %e, "cannot install the KVM probe's kick signal handler");
            return false;
        }
        // Several kicks: one that lands just before the thread enters `KVM_RUN`
        // is lost (the handler runs, the vCPU then blocks).
        for _ in 0..KICKS {
            if vcpu_thread.kill(signal).is_err() {
                return false;
            }
            match answered.recv_timeout(KICK_INTERVAL) {
                Err(RecvTimeoutError::Timeout) => continue,
                // An answer, or the thread is gone: either way it let go.
                Ok(_) | Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
        false
    }

    /// The whole probe, on the probe thread. `Err` is the reason it is broken.
    fn run_guest(stop: &AtomicBool) -> Result<Probe, String> {
        // Declared first, dropped last: the guest's memory outlives the VM.
        let mut page = GuestPage::new()?;
        page.write(&GUEST_CODE);

        let kvm = match Kvm::new() {
            Ok(kvm) => kvm,
            Err(e) if e.errno() == libc::ENOENT => return Ok(Probe::Absent),
            Err(e) => return Err(format!("opening /dev/kvm: {e}")),
        };
        let version = kvm.get_api_version();
        if version != KVM_API_VERSION {
            return Err(format!("KVM_GET_API_VERSION answered {version}, expected {KVM_API_VERSION}"));
        }
        let vm = kvm.create_vm().map_err(failed("KVM_CREATE_VM"))?;
        vm.set_tss_address(TSS_ADDR).map_err(failed("KVM_SET_TSS_ADDR"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: GUEST_ADDR,
            memory_size: PAGE_SIZE as u64,
            userspace_addr: page.addr(),
        };
        // SAFETY: the region is a page of our own mapping, used by nothing else,
        // and it is unmapped only after the VM is closed (`page` drops last).
        unsafe { vm.set_user_memory_region(region) }.map_err(failed("KVM_SET_USER_MEMORY_REGION"))?;

        let mut vcpu = vm.create_vcpu(0).map_err(failed("KVM_CREATE_VCPU"))?;
        let mut sregs = vcpu.get_sregs().map_err(failed("KVM_GET_SREGS"))?;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        vcpu.set_sregs(&sregs).map_err(failed("KVM_SET_SREGS"))?;
        let regs = kvm_regs { rip: GUEST_ADDR, rflags: 0x2, ..Default::default() };
        vcpu.set_regs(&regs).map_err(failed("KVM_SET_REGS"))?;

        let mut wrote = false;
        for _ in 0..MAX_RUNS {
            if stop.load(Ordering::SeqCst) {
                return Err("stopped after the timeout".into());
            }
            match vcpu.run() {
                Ok(VcpuExit::IoOut(PROBE_PORT, [PROBE_BYTE])) if !wrote => wrote = true,
                Ok(VcpuExit::Hlt) if wrote => return Ok(Probe::Works),
                Ok(exit) => return Err(format!("unexpected exit from KVM_RUN: {exit:?}")),
                // A signal for this thread (a kick, or one of the process's that
                // landed here): the loop head decides whether to go on.
                Err(e) if e.errno() == libc::EINTR => {}
                Err(e) => return Err(failed("KVM_RUN")(e)),
            }
        }
        Err(format!("no halt after {MAX_RUNS} runs"))
    }

    fn failed(ioctl: &'static str) -> impl Fn(kvm_ioctls::Error) -> String {
        move |e| format!("{ioctl}: {e}")
    }

    /// One page of anonymous memory: the guest's RAM.
    struct GuestPage(NonNull<libc::c_void>);

    impl GuestPage {
        fn new() -> Result<GuestPage, String> {
            // SAFETY: a fresh private anonymous mapping, aliasing nothing.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    PAGE_SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if addr == libc::MAP_FAILED {
                return Err(format!("mmap of the guest page: {}", std::io::Error::last_os_error()));
            }
            NonNull::new(addr).map(GuestPage).ok_or_else(|| "mmap returned a null page".to_owned())
        }

        fn write(&mut self, code: &[u8]) {
            let len = code.len().min(PAGE_SIZE);
            // SAFETY: the page is ours, writable and `PAGE_SIZE` long; `len` fits.
            unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.0.as_ptr().cast::<u8>(), len) };
        }

        fn addr(&self) -> u64 {
            self.0.as_ptr() as u64
        }
    }

    impl Drop for GuestPage {
        fn drop(&mut self) {
            // SAFETY: the mapping `new` made, unmapped once. Failure would leave a
            // page mapped, which is harmless.
            unsafe { libc::munmap(self.0.as_ptr(), PAGE_SIZE) };
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    use std::time::Duration;

    use super::Probe;

    pub(super) fn kvm_works(_timeout: Duration) -> Probe {
        Probe::Broken("the KVM probe runs an x86-64 guest and is built for x86-64 Linux only".into())
    }
}
