//! One round of point-to-point messages with a deadline: the building block of every exchange
//! of the MPI group.
//!
//! Why not MPI's collectives: a blocking collective waits forever on a peer that hangs, and
//! says nothing about which one. A round of nonblocking sends and receives, polled against a
//! deadline, knows which peer's message never came, so the error names it.
//!
//! Why the buffers are leaked on a timeout: the round's requests are still pending inside MPI
//! and may write into (or read from) the buffers at any later time, so they must never be
//! freed or reused. The group owns them and refuses every call after a timeout.

use std::os::raw::{c_int, c_void};
use std::time::{Duration, Instant};

use mpi::ffi;

/// Polling in a busy loop for this long, then with `yield_now` until `YIELD`, then with short
/// sleeps: a message from a ready peer arrives within microseconds (and a yield on a busy
/// machine can cost a whole time slice), while on shared cores a rank that waits long must
/// leave the CPU to the ranks still computing.
const SPIN: Duration = Duration::from_micros(50);
const YIELD: Duration = Duration::from_millis(1);
const NAP: Duration = Duration::from_micros(50);

/// `len` bytes at `offset` of a round's send (or receive) buffer, to (or from) rank `peer`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Msg {
    pub peer: usize,
    pub offset: usize,
    pub len: usize,
}

/// Why a round did not complete.
#[derive(Debug)]
pub(super) enum RoundError {
    /// Messages still pending at the deadline: the peers whose messages did not arrive, then
    /// those that did not take ours. The buffers have been leaked.
    Stalled { silent: Vec<usize>, deaf: Vec<usize> },
    /// A message outside its buffer, or over MPI's `int` count: a bug of the caller.
    Bounds(String),
    /// MPI returned an error code (the group's communicator returns errors, not aborts).
    Mpi(String),
}

/// MPI's text for an error code.
pub(super) fn error_text(code: c_int) -> String {
    let mut buf = vec![0u8; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_ERROR_STRING bytes as the standard requires.
    let rc = unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr().cast(), &mut len) };
    if rc != ffi::MPI_SUCCESS as c_int {
        return format!("MPI error code {code}");
    }
    buf.truncate(len.clamp(0, ffi::MPI_MAX_ERROR_STRING as c_int) as usize);
    format!("{} (MPI error code {code})", String::from_utf8_lossy(&buf))
}

fn check(rc: c_int) -> Result<(), RoundError> {
    if rc == ffi::MPI_SUCCESS as c_int {
        Ok(())
    } else {
        Err(RoundError::Mpi(error_text(rc)))
    }
}

fn in_bounds(msgs: &[Msg], buf_len: usize) -> Result<(), RoundError> {
    for m in msgs {
        if m.offset.checked_add(m.len).is_none_or(|end| end > buf_len) || c_int::try_from(m.len).is_err() {
            return Err(RoundError::Bounds(format!(
                "message of {} bytes at {} to/from rank {} is outside a {buf_len}-byte buffer",
                m.len, m.offset, m.peer
            )));
        }
    }
    Ok(())
}

/// A posted message and whether it has completed.
struct Pending {
    request: ffi::MPI_Request,
    peer: usize,
    receive: bool,
    done: bool,
}

/// Posts every receive of `recvs` (into `recv`) and every send of `sends` (from `send`) on
/// `comm` with `tag`, then polls them until all complete or `timeout` passes. On a timeout
/// both buffers are leaked (left allocated forever, emptied here) and the peers named.
pub(super) fn round(
    comm: ffi::MPI_Comm,
    tag: c_int,
    send: &mut Vec<u8>,
    sends: &[Msg],
    recv: &mut Vec<u8>,
    recvs: &[Msg],
    timeout: Duration,
) -> Result<(), RoundError> {
    in_bounds(sends, send.len())?;
    in_bounds(recvs, recv.len())?;
    let mut pending: Vec<Pending> = Vec::with_capacity(sends.len() + recvs.len());
    let posted = post(comm, tag, send, sends, recv, recvs, &mut pending);
    let outcome = posted.and_then(|()| poll(&mut pending, timeout));
    if outcome.is_err() && pending.iter().any(|p| !p.done) {
        // Requests MPI still holds point into the buffers: never free them.
        std::mem::forget(std::mem::take(send));
        std::mem::forget(std::mem::take(recv));
    }
    outcome
}

fn post(
    comm: ffi::MPI_Comm,
    tag: c_int,
    send: &[u8],
    sends: &[Msg],
    recv: &mut [u8],
    recvs: &[Msg],
    pending: &mut Vec<Pending>,
) -> Result<(), RoundError> {
    for m in recvs {
        // SAFETY: null is a valid request handle to be overwritten by MPI.
        let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the range is inside `recv` (checked by `in_bounds`); `recv` stays allocated
        // until the request completes: `round` polls it to completion or leaks the buffer.
        let rc = unsafe {
            ffi::MPI_Irecv(
                recv.as_mut_ptr().add(m.offset).cast::<c_void>(),
                m.len as c_int,
                ffi::RSMPI_UINT8_T,
                m.peer as c_int,
                tag,
                comm,
                &mut request,
            )
        };
        check(rc)?;
        pending.push(Pending { request, peer: m.peer, receive: true, done: false });
    }
    for m in sends {
        // SAFETY: null is a valid request handle to be overwritten by MPI.
        let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: as for the receives, with `send`, which nothing writes while pending.
        let rc = unsafe {
            ffi::MPI_Isend(
                send.as_ptr().add(m.offset).cast::<c_void>(),
                m.len as c_int,
                ffi::RSMPI_UINT8_T,
                m.peer as c_int,
                tag,
                comm,
                &mut request,
            )
        };
        check(rc)?;
        pending.push(Pending { request, peer: m.peer, receive: false, done: false });
    }
    Ok(())
}

fn poll(pending: &mut [Pending], timeout: Duration) -> Result<(), RoundError> {
    let start = Instant::now();
    loop {
        let mut open = false;
        for p in pending.iter_mut().filter(|p| !p.done) {
            let mut flag: c_int = 0;
            // SAFETY: `p.request` was returned by MPI_Isend/MPI_Irecv and not completed yet.
            check(unsafe { ffi::MPI_Test(&mut p.request, &mut flag, ffi::RSMPI_STATUS_IGNORE) })?;
            p.done = flag != 0;
            open |= !p.done;
        }
        if !open {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            let peers = |receive: bool| -> Vec<usize> {
                let mut v: Vec<usize> =
                    pending.iter().filter(|p| !p.done && p.receive == receive).map(|p| p.peer).collect();
                v.dedup();
                v
            };
            return Err(RoundError::Stalled { silent: peers(true), deaf: peers(false) });
        }
        if waited < SPIN {
            std::hint::spin_loop();
        } else if waited < YIELD {
            std::thread::yield_now();
        } else {
            std::thread::sleep(NAP);
        }
    }
}
