//! Go `os.FileMode` bits, as carried in `fsutil.types.Stat.mode`, and
//! their conversion to and from Unix `st_mode`.

/// `d`: a directory.
pub const DIR: u32 = 1 << 31;
/// `a`: append-only.
pub const APPEND: u32 = 1 << 30;
/// `l`: exclusive use.
pub const EXCLUSIVE: u32 = 1 << 29;
/// `T`: temporary file (Plan 9).
pub const TEMPORARY: u32 = 1 << 28;
/// `L`: a symbolic link.
pub const SYMLINK: u32 = 1 << 27;
/// `D`: a device file.
pub const DEVICE: u32 = 1 << 26;
/// `p`: a named pipe.
pub const NAMED_PIPE: u32 = 1 << 25;
/// `S`: a Unix domain socket.
pub const SOCKET: u32 = 1 << 24;
/// `u`: setuid.
pub const SETUID: u32 = 1 << 23;
/// `g`: setgid.
pub const SETGID: u32 = 1 << 22;
/// `c`: a character device (with [`DEVICE`]).
pub const CHAR_DEVICE: u32 = 1 << 21;
/// `t`: sticky.
pub const STICKY: u32 = 1 << 20;
/// `?`: a non-regular file of unknown kind.
pub const IRREGULAR: u32 = 1 << 19;
/// The permission bits.
pub const PERM: u32 = 0o777;
/// Go's `os.ModeType`: every type bit. A regular file has none.
pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;

const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const S_IFBLK: u32 = 0o060000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFIFO: u32 = 0o010000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Converts a Unix `st_mode` to a Go `os.FileMode`, as Go's
/// `os.Lstat` does on Linux (`fillFileStatFromSys`).
pub fn from_unix(st_mode: u32) -> u32 {
    let mut mode = st_mode & PERM;
    match st_mode & S_IFMT {
        S_IFBLK => mode |= DEVICE,
        S_IFCHR => mode |= DEVICE | CHAR_DEVICE,
        S_IFDIR => mode |= DIR,
        S_IFIFO => mode |= NAMED_PIPE,
        S_IFLNK => mode |= SYMLINK,
        S_IFREG => {}
        S_IFSOCK => mode |= SOCKET,
        _ => {}
    }
    if st_mode & S_ISGID != 0 {
        mode |= SETGID;
    }
    if st_mode & S_ISUID != 0 {
        mode |= SETUID;
    }
    if st_mode & S_ISVTX != 0 {
        mode |= STICKY;
    }
    mode
}

/// Converts a Go `os.FileMode` back to a Unix `st_mode` (type and
/// permission bits, setuid/setgid/sticky).
pub fn to_unix(mode: u32) -> u32 {
    let kind = if mode & DIR != 0 {
        S_IFDIR
    } else if mode & SYMLINK != 0 {
        S_IFLNK
    } else if mode & NAMED_PIPE != 0 {
        S_IFIFO
    } else if mode & SOCKET != 0 {
        S_IFSOCK
    } else if mode & DEVICE != 0 {
        if mode & CHAR_DEVICE != 0 {
            S_IFCHR
        } else {
            S_IFBLK
        }
    } else {
        S_IFREG
    };
    let mut out = kind | (mode & PERM);
    if mode & SETUID != 0 {
        out |= S_ISUID;
    }
    if mode & SETGID != 0 {
        out |= S_ISGID;
    }
    if mode & STICKY != 0 {
        out |= S_ISVTX;
    }
    out
}

pub(super) fn unix_kind(st_mode: u32) -> u32 {
    st_mode & S_IFMT
}
pub(super) const UNIX_DIR: u32 = S_IFDIR;
pub(super) const UNIX_LNK: u32 = S_IFLNK;
pub(super) const UNIX_REG: u32 = S_IFREG;
pub(super) const UNIX_FIFO: u32 = S_IFIFO;
pub(super) const UNIX_SOCK: u32 = S_IFSOCK;
pub(super) const UNIX_BLK: u32 = S_IFBLK;
pub(super) const UNIX_CHR: u32 = S_IFCHR;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_conversion_matches_go() {
        assert_eq!(from_unix(0o100644), 0o644);
        assert_eq!(from_unix(0o040755), DIR | 0o755);
        assert_eq!(from_unix(0o120777), SYMLINK | 0o777);
        assert_eq!(from_unix(0o010644), NAMED_PIPE | 0o644);
        assert_eq!(from_unix(0o140755), SOCKET | 0o755);
        assert_eq!(from_unix(0o060660), DEVICE | 0o660);
        assert_eq!(from_unix(0o020666), DEVICE | CHAR_DEVICE | 0o666);
        assert_eq!(from_unix(0o104755), SETUID | 0o755);
        assert_eq!(from_unix(0o102755), SETGID | 0o755);
        assert_eq!(from_unix(0o041777), DIR | STICKY | 0o777);
        assert_eq!(DIR, 2147483648);
        assert_eq!(TYPE, 2401763328);
        for st in [
            0o100644, 0o040755, 0o120777, 0o010600, 0o140700, 0o060660, 0o020666, 0o107755,
            0o041777,
        ] {
            assert_eq!(to_unix(from_unix(st)), st, "{st:o}");
        }
    }
}
