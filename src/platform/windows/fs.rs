//! File work relative to an open directory handle: Windows' `openat`, `renameat`, `mkdirat` and `unlinkat`.
//!
//! Every name is opened with `NtCreateFile` relative to its parent's handle (`OBJECT_ATTRIBUTES.RootDirectory`) and
//! as itself (`FILE_OPEN_REPARSE_POINT`): a junction, a symlink or a mount point below a dir is never followed, it is
//! the thing renamed or deleted. A rename moves the open handle's file into another open dir
//! (`FILE_RENAME_INFO.RootDirectory`), so no path is looked up again between a check and the act. Every handle
//! shares reading, writing and deleting: holding one never stands in anyone's way, ours included.
//!
//! A delete asks for POSIX semantics (the name goes at once, even while another process has the file open with
//! share-delete) and ignores the read-only attribute (`FILE_DISPOSITION_INFO_EX`); where the file system or Windows
//! version refuses that (FAT, Windows before 10 1709, Wine), the read-only attribute is cleared on the handle and the
//! classic disposition is set.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::path::Path;

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    FILE_CREATE, FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_FOR_BACKUP_INTENT,
    FILE_OPEN_REPARSE_POINT, FILE_RENAME_INFORMATION, FILE_SYNCHRONOUS_IO_NONALERT, FileRenameInformation,
    NtCreateFile, NtSetInformationFile,
};
use windows_sys::Win32::Foundation::{
    ERROR_INVALID_FUNCTION, ERROR_INVALID_PARAMETER, ERROR_NO_MORE_FILES, ERROR_NOT_SUPPORTED, HANDLE,
    RtlNtStatusToDosError, UNICODE_STRING,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, DELETE, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_READONLY,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_BASIC_INFO, FILE_DISPOSITION_FLAG_DELETE,
    FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE, FILE_DISPOSITION_FLAG_POSIX_SEMANTICS, FILE_DISPOSITION_INFO,
    FILE_DISPOSITION_INFO_EX, FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_ID_BOTH_DIR_INFO, FILE_ID_INFO,
    FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_WRITE_ATTRIBUTES, FileBasicInfo,
    FileDispositionInfo, FileDispositionInfoEx, FileIdBothDirectoryInfo, FileIdBothDirectoryRestartInfo, FileIdInfo,
    GetFileInformationByHandle, GetFileInformationByHandleEx, SYNCHRONIZE, SetFileInformationByHandle,
};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

use crate::model::FileId;

/// What an open is for, which decides the access asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// List a dir, or read a file's attributes.
    Read,
    /// Rename or delete it, and clear its read-only attribute.
    Delete,
    /// Read it and move it (a dir the run holds and may swap out).
    ReadDelete,
}

/// What kind of file an open insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Dir,
    NotDir,
    /// Whatever is there; with [`Follow::No`], a reparse point itself.
    Any,
}

/// Whether a reparse point at the name itself is followed (the user's own `target` junction) or opened as itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// An open file's attributes, identity and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub id: FileId,
    pub attributes: u32,
    pub size: u64,
    /// Hard links to it: its attributes are every link's.
    pub links: u32,
}

impl Info {
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_DIRECTORY != 0
    }

    /// A junction, a symlink, a mount point or any other reparse point: never descended into.
    #[must_use]
    pub fn is_reparse_point(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0
    }
}

/// One entry of a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: OsString,
    pub attributes: u32,
    pub size: u64,
}

impl Entry {
    /// A dir to descend into: a dir that is not a reparse point (a junction is a dir with one).
    #[must_use]
    pub fn is_plain_dir(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 && self.attributes & FILE_ATTRIBUTE_REPARSE_POINT == 0
    }
}

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

fn access_mask(access: Access) -> u32 {
    let read = FILE_GENERIC_READ;
    let delete = DELETE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE;
    match access {
        Access::Read => read,
        Access::Delete => delete,
        Access::ReadDelete => read | delete,
    }
}

/// Opens the dir at `path`, following whatever reparse points the path holds (the user's own, on the way to it).
pub fn open_dir(path: &Path, access: Access) -> io::Result<OwnedHandle> {
    use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_FLAG_BACKUP_SEMANTICS, OPEN_EXISTING};
    let wide = super::wide(path.as_os_str());
    // SAFETY: `wide` is NUL-terminated and outlives the call; no security attributes or template.
    let h = unsafe {
        CreateFileW(
            wide.as_ptr(),
            access_mask(access),
            SHARE_ALL,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS,
            std::ptr::null_mut(),
        )
    };
    let h = super::owned(h)?;
    if !info(&h)?.is_dir() {
        return Err(io::Error::from_raw_os_error(windows_sys::Win32::Foundation::ERROR_DIRECTORY.cast_signed()));
    }
    Ok(h)
}

/// Opens `name` in the open dir `parent`. `name` is one component: it is looked up in `parent` alone.
pub fn open_at(
    parent: &OwnedHandle,
    name: &OsStr,
    access: Access,
    want: Want,
    follow: Follow,
) -> io::Result<OwnedHandle> {
    nt_create(parent, name, access_mask(access), FILE_OPEN, options(want, follow))
}

/// Makes the dir `name` in `parent` and opens it; it must not exist yet.
pub fn create_dir_at(parent: &OwnedHandle, name: &OsStr) -> io::Result<OwnedHandle> {
    nt_create(parent, name, access_mask(Access::ReadDelete), FILE_CREATE, options(Want::Dir, Follow::No))
}

/// Makes the file `name` in `parent` for writing; it must not exist yet.
pub fn create_file_at(parent: &OwnedHandle, name: &OsStr) -> io::Result<std::fs::File> {
    let access = FILE_GENERIC_WRITE | FILE_READ_ATTRIBUTES | SYNCHRONIZE;
    let h = nt_create(parent, name, access, FILE_CREATE, options(Want::NotDir, Follow::No))?;
    Ok(std::fs::File::from(h))
}

fn options(want: Want, follow: Follow) -> u32 {
    let mut options = FILE_SYNCHRONOUS_IO_NONALERT | FILE_OPEN_FOR_BACKUP_INTENT;
    if follow == Follow::No {
        options |= FILE_OPEN_REPARSE_POINT;
    }
    match want {
        Want::Dir => options | FILE_DIRECTORY_FILE,
        Want::NotDir => options | FILE_NON_DIRECTORY_FILE,
        Want::Any => options,
    }
}

fn nt_create(
    parent: &OwnedHandle,
    name: &OsStr,
    access: u32,
    disposition: u32,
    options: u32,
) -> io::Result<OwnedHandle> {
    let wide: Vec<u16> = name.encode_wide().collect();
    // One component only: a separator would let the name reach past `parent`.
    if wide.is_empty() || wide.iter().any(|&c| c == u16::from(b'\\') || c == u16::from(b'/')) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a single path component"));
    }
    let bytes =
        u16::try_from(wide.len() * 2).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
    let unicode = UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: wide.as_ptr().cast_mut() };
    let attributes = OBJECT_ATTRIBUTES {
        Length: u32::try_from(std::mem::size_of::<OBJECT_ATTRIBUTES>()).unwrap_or(u32::MAX),
        RootDirectory: parent.as_raw_handle() as HANDLE,
        ObjectName: &raw const unicode,
        Attributes: 0,
        SecurityDescriptor: std::ptr::null(),
        SecurityQualityOfService: std::ptr::null(),
    };
    let mut handle: HANDLE = std::ptr::null_mut();
    let mut status_block = IO_STATUS_BLOCK::default();
    // SAFETY: every pointer is to a live local of the type the call reads or writes; the name buffer outlives it.
    let status = unsafe {
        NtCreateFile(
            &raw mut handle,
            access | SYNCHRONIZE,
            &raw const attributes,
            &raw mut status_block,
            std::ptr::null(),
            FILE_ATTRIBUTE_NORMAL,
            SHARE_ALL,
            disposition,
            options,
            std::ptr::null(),
            0,
        )
    };
    if status < 0 {
        return Err(nt_error(status));
    }
    super::owned(handle)
}

/// The Win32 error an NTSTATUS stands for, so that callers match one kind of code.
fn nt_error(status: i32) -> io::Error {
    // SAFETY: a pure lookup.
    let code = unsafe { RtlNtStatusToDosError(status) };
    io::Error::from_raw_os_error(i32::try_from(code).unwrap_or(i32::MAX))
}

/// The attributes, identity and size of an open file.
pub fn info(h: &impl AsRawHandle) -> io::Result<Info> {
    let mut i = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: a valid handle and a struct of the size the call writes.
    if unsafe { GetFileInformationByHandle(h.as_raw_handle() as HANDLE, &raw mut i) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u64::from(i.nFileIndexHigh) << 32) | u64::from(i.nFileIndexLow);
    Ok(Info {
        id: FileId { dev: u64::from(i.dwVolumeSerialNumber), ino: file_id_128(h).unwrap_or(index) },
        attributes: i.dwFileAttributes,
        size: (u64::from(i.nFileSizeHigh) << 32) | u64::from(i.nFileSizeLow),
        links: i.nNumberOfLinks,
    })
}

/// The file's 128-bit id (`FileIdInfo`), folded into 64 bits. NTFS's ids fit in the low half, which is kept as it
/// is (the same number as `nFileIndex`); `ReFS` (a Dev Drive) uses the whole 128 bits and does not promise the 64-bit
/// index is unique, so the high half is mixed in, scrambled, rather than dropped: two small structured halves
/// (a table and a row) do not cancel out as a plain XOR would let them. `None` where the call is refused (FAT, older
/// systems): the 64-bit index is the id there, for every file of that volume alike.
fn file_id_128(h: &impl AsRawHandle) -> Option<u64> {
    let mut info = FILE_ID_INFO::default();
    let size = u32::try_from(std::mem::size_of::<FILE_ID_INFO>()).unwrap_or(u32::MAX);
    // SAFETY: a valid handle and a struct of the size given.
    let ok =
        unsafe { GetFileInformationByHandleEx(h.as_raw_handle() as HANDLE, FileIdInfo, (&raw mut info).cast(), size) };
    if ok == 0 {
        return None;
    }
    let bytes = info.FileId.Identifier;
    let low = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let high = u64::from_le_bytes(bytes[8..].try_into().ok()?);
    Some(if high == 0 { low } else { low ^ high.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) })
}

/// The entries of the open dir `dir` (not `.` and `..`), read from the handle.
pub fn list(dir: &OwnedHandle) -> io::Result<Vec<Entry>> {
    // u64 words: the records are 8-byte aligned within the buffer.
    let mut buf = vec![0u64; 8 * 1024];
    let mut out = Vec::new();
    let mut class = FileIdBothDirectoryRestartInfo;
    loop {
        let room = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
        // SAFETY: `buf` has `room` bytes of space, aligned for the records written into it.
        let ok = unsafe {
            GetFileInformationByHandleEx(dir.as_raw_handle() as HANDLE, class, buf.as_mut_ptr().cast(), room)
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(ERROR_NO_MORE_FILES.cast_signed()) { Ok(out) } else { Err(e) };
        }
        class = FileIdBothDirectoryInfo;
        let base = buf.as_ptr().cast::<u8>();
        let mut offset = 0usize;
        loop {
            // SAFETY: the call wrote a chain of records into `buf`, each at `offset` from its start, linked by
            // `NextEntryOffset` (0 for the last); `read_unaligned` needs no alignment, the name is read within the
            // record's length.
            let (record, name) = unsafe {
                let at = base.add(offset);
                let record = std::ptr::read_unaligned(at.cast::<FILE_ID_BOTH_DIR_INFO>());
                let name_at = at.add(std::mem::offset_of!(FILE_ID_BOTH_DIR_INFO, FileName));
                let len = record.FileNameLength as usize / 2;
                let name: Vec<u16> =
                    (0..len).map(|i| u16::from_le_bytes([*name_at.add(2 * i), *name_at.add(2 * i + 1)])).collect();
                (record, name)
            };
            let dot = [u16::from(b'.')];
            if name != dot && name != [dot[0], dot[0]] {
                out.push(Entry {
                    name: OsString::from_wide(&name),
                    attributes: record.FileAttributes,
                    size: u64::try_from(record.EndOfFile).unwrap_or(0),
                });
            }
            if record.NextEntryOffset == 0 {
                break;
            }
            offset += record.NextEntryOffset as usize;
        }
    }
}

/// Moves the open file or dir `h` into the open dir `parent` as `name` (one component), never replacing what is
/// there. `h` must have been opened with [`Access::Delete`].
pub fn rename_into(h: &OwnedHandle, parent: &OwnedHandle, name: &OsStr) -> io::Result<()> {
    let wide: Vec<u16> = name.encode_wide().collect();
    if wide.is_empty() || wide.iter().any(|&c| c == u16::from(b'\\') || c == u16::from(b'/')) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a single path component"));
    }
    // The NT call, not `SetFileInformationByHandle`: Wine's kernelbase turns the name into a path from the current
    // dir first, which a rename relative to `RootDirectory` must not have.
    let header = std::mem::offset_of!(FILE_RENAME_INFORMATION, FileName);
    // Never less than the struct itself: a one-letter name ends inside its padding, and NT refuses a shorter length.
    let size = (header + wide.len() * 2).max(std::mem::size_of::<FILE_RENAME_INFORMATION>());
    // u64 words: the struct holds a handle, so it is 8-byte aligned.
    let mut buf = vec![0u64; size.div_ceil(8) + 1];
    let info = buf.as_mut_ptr().cast::<FILE_RENAME_INFORMATION>();
    // SAFETY: `buf` is zeroed, aligned and large enough for the header and the name after it; the fields written
    // are within it.
    unsafe {
        (*info).RootDirectory = parent.as_raw_handle() as HANDLE;
        (*info).FileNameLength = u32::try_from(wide.len() * 2).unwrap_or(u32::MAX);
        let bytes: Vec<u8> = wide.iter().flat_map(|c| c.to_le_bytes()).collect();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), info.cast::<u8>().add(header), bytes.len());
    }
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    let mut status_block = IO_STATUS_BLOCK::default();
    // SAFETY: a valid handle and a buffer of `size` bytes holding a FILE_RENAME_INFORMATION (ReplaceIfExists false).
    let status = unsafe {
        NtSetInformationFile(
            h.as_raw_handle() as HANDLE,
            &raw mut status_block,
            info.cast(),
            size,
            FileRenameInformation,
        )
    };
    if status < 0 { Err(nt_error(status)) } else { Ok(()) }
}

/// Deletes the open file or (empty) dir `h`, opened with [`Access::Delete`], as the module docs say. A reparse point
/// opened as itself is deleted as itself: what it points to is not touched.
pub fn delete(h: &impl AsRawHandle) -> io::Result<()> {
    let raw = h.as_raw_handle() as HANDLE;
    let posix = FILE_DISPOSITION_INFO_EX {
        Flags: FILE_DISPOSITION_FLAG_DELETE
            | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
            | FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE,
    };
    let size = u32::try_from(std::mem::size_of_val(&posix)).unwrap_or(u32::MAX);
    // SAFETY: a valid handle and a struct of the size given.
    if unsafe { SetFileInformationByHandle(raw, FileDispositionInfoEx, (&raw const posix).cast(), size) } != 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    let unsupported = [ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED, ERROR_INVALID_FUNCTION];
    if !unsupported.iter().any(|&c| e.raw_os_error() == Some(c.cast_signed())) {
        return Err(e);
    }
    let Info { attributes, links, .. } = info(h)?;
    let read_only = attributes & FILE_ATTRIBUTE_READONLY != 0;
    if read_only {
        set_attributes(h, attributes & !FILE_ATTRIBUTE_READONLY)?;
    }
    let classic = FILE_DISPOSITION_INFO { DeleteFile: true };
    let size = u32::try_from(std::mem::size_of_val(&classic)).unwrap_or(u32::MAX);
    // SAFETY: a valid handle and a struct of the size given.
    let deleted = unsafe { SetFileInformationByHandle(raw, FileDispositionInfo, (&raw const classic).cast(), size) };
    let result = if deleted == 0 { Err(io::Error::last_os_error()) } else { Ok(()) };
    // The attribute is the file's, not the name's: a file that stays, or that other links outside the tree still
    // name, keeps what its owner set.
    if read_only && (result.is_err() || links > 1) {
        let _ = set_attributes(h, attributes);
    }
    result
}

/// Sets the attributes of the open file `h` (0 would mean "leave them": a file with none is `NORMAL`).
fn set_attributes(h: &impl AsRawHandle, attributes: u32) -> io::Result<()> {
    let basic = FILE_BASIC_INFO {
        FileAttributes: if attributes == 0 { FILE_ATTRIBUTE_NORMAL } else { attributes },
        ..FILE_BASIC_INFO::default()
    };
    let size = u32::try_from(std::mem::size_of_val(&basic)).unwrap_or(u32::MAX);
    // SAFETY: a valid handle and a struct of the size given; zero times mean "leave them".
    if unsafe {
        SetFileInformationByHandle(h.as_raw_handle() as HANDLE, FileBasicInfo, (&raw const basic).cast(), size)
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::windows::io::{FromRawHandle, RawHandle};

    /// Owns a handle a call returned.
    ///
    /// # Safety
    /// `h` must be a valid handle owned by nothing else.
    unsafe fn adopt(h: RawHandle) -> OwnedHandle {
        // SAFETY: as the caller promises.
        unsafe { OwnedHandle::from_raw_handle(h) }
    }

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn opens_lists_renames_and_deletes_relative_to_a_handle() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("a/f.txt"), "hello").unwrap();
        let root = open_dir(tmp.path(), Access::Read).unwrap();
        let a = open_at(&root, os("a"), Access::Read, Want::Dir, Follow::No).unwrap();
        let mut names: Vec<(String, bool, u64)> = list(&a)
            .unwrap()
            .into_iter()
            .map(|e| (e.name.to_string_lossy().into_owned(), e.is_plain_dir(), e.size))
            .collect();
        names.sort();
        assert_eq!(names, vec![("b".into(), true, 0), ("f.txt".into(), false, 5)]);
        assert!(open_at(&root, os(r"a\b"), Access::Read, Want::Any, Follow::No).is_err(), "one component only");
        assert!(open_at(&a, os("f.txt"), Access::Read, Want::Dir, Follow::No).is_err());

        // A dir moved by its handle into another open dir.
        let made = create_dir_at(&root, os("trash")).unwrap();
        assert!(info(&made).unwrap().is_dir());
        assert!(create_dir_at(&root, os("trash")).is_err(), "never replaces");
        let b = open_at(&a, os("b"), Access::Delete, Want::Dir, Follow::No).unwrap();
        let id = info(&b).unwrap().id;
        rename_into(&b, &made, os("moved")).unwrap();
        assert!(tmp.path().join("trash/moved").is_dir() && !tmp.path().join("a/b").exists());
        let again = open_at(&made, os("moved"), Access::Read, Want::Dir, Follow::No).unwrap();
        assert_eq!(info(&again).unwrap().id, id);
        drop(again);
        delete(&b).unwrap();
        drop(b);
        assert!(!tmp.path().join("trash/moved").exists());

        let mut f = create_file_at(&made, os("CACHEDIR.TAG")).unwrap();
        std::io::Write::write_all(&mut f, b"tag").unwrap();
        drop(f);
        assert_eq!(std::fs::read(tmp.path().join("trash/CACHEDIR.TAG")).unwrap(), b"tag");
    }

    #[test]
    fn an_id_is_the_files_whatever_handle_asks() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), "x").unwrap();
        std::fs::write(tmp.path().join("g"), "x").unwrap();
        let root = open_dir(tmp.path(), Access::Read).unwrap();
        let id = |name: &str| info(&open_at(&root, os(name), Access::Read, Want::Any, Follow::No).unwrap()).unwrap().id;
        assert_eq!(id("f"), id("f"));
        assert_ne!(id("f"), id("g"));
        let by_std = info(&std::fs::File::open(tmp.path().join("f")).unwrap()).unwrap().id;
        assert_eq!(by_std, id("f"), "every way of opening it gives one id");
    }

    #[test]
    fn a_one_letter_name_is_moved() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("t")).unwrap();
        let root = open_dir(tmp.path(), Access::Read).unwrap();
        let t = open_at(&root, os("t"), Access::Delete, Want::Dir, Follow::No).unwrap();
        rename_into(&t, &root, os("u")).unwrap();
        rename_into(&t, &root, os("t")).unwrap();
        assert!(tmp.path().join("t").is_dir());
    }

    #[test]
    fn a_read_only_file_linked_elsewhere_keeps_its_attribute() {
        let tmp = tempfile::tempdir().unwrap();
        let (inside, outside) = (tmp.path().join("in"), tmp.path().join("keep.txt"));
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(&outside, "keep").unwrap();
        std::fs::hard_link(&outside, inside.join("link.txt")).unwrap();
        let mut perms = std::fs::metadata(&outside).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&outside, perms).unwrap();
        let dir = open_dir(&inside, Access::Read).unwrap();
        let h = open_at(&dir, os("link.txt"), Access::Delete, Want::NotDir, Follow::No).unwrap();
        delete(&h).unwrap();
        drop(h);
        assert!(!inside.join("link.txt").exists());
        assert!(std::fs::metadata(&outside).unwrap().permissions().readonly(), "the other link's file stays read-only");
    }

    #[test]
    fn a_read_only_file_is_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("ro.txt");
        std::fs::write(&file, "x").unwrap();
        let mut perms = std::fs::metadata(&file).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&file, perms).unwrap();
        let root = open_dir(tmp.path(), Access::Read).unwrap();
        let h = open_at(&root, os("ro.txt"), Access::Delete, Want::NotDir, Follow::No).unwrap();
        delete(&h).unwrap();
        drop(h);
        assert!(!file.exists());
    }

    #[test]
    #[expect(clippy::print_stderr, reason = "a test says why it did not run")]
    fn a_junction_is_deleted_as_itself_and_what_it_points_to_is_left() {
        if let Some(wine) = super::super::wine_version() {
            // Wine 8.0 answers FSCTL_SET_REPARSE_POINT with "not supported": no junction can be made there.
            eprintln!("skipped under Wine {wine}: it cannot make a junction; the Windows job runs this");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), "keep").unwrap();
        let link = tmp.path().join("link");
        make_junction(&link, &outside);
        let root = open_dir(tmp.path(), Access::Read).unwrap();
        let entry = list(&root).unwrap().into_iter().find(|e| e.name == "link").unwrap();
        assert!(!entry.is_plain_dir(), "a junction is never descended into: {:#x}", entry.attributes);
        let h = open_at(&root, os("link"), Access::Delete, Want::Any, Follow::No).unwrap();
        assert!(info(&h).unwrap().is_reparse_point());
        delete(&h).unwrap();
        drop(h);
        assert!(std::fs::symlink_metadata(&link).is_err());
        assert_eq!(std::fs::read(outside.join("keep.txt")).unwrap(), b"keep");
    }

    /// A junction from `link` to `to`, made as `mklink /J` does: a dir with a mount-point reparse point.
    pub(crate) fn make_junction(link: &Path, to: &Path) {
        use windows_sys::Win32::System::IO::DeviceIoControl;
        const FSCTL_SET_REPARSE_POINT: u32 = 0x0009_00A4;
        const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
        std::fs::create_dir(link).unwrap();
        let target: Vec<u16> = OsStr::new(r"\??\").encode_wide().chain(to.as_os_str().encode_wide()).collect();
        let bytes = target.len() * 2;
        // MountPointReparseBuffer: SubstituteNameOffset, SubstituteNameLength, PrintNameOffset, PrintNameLength,
        // then the substitute name, its NUL, and an empty print name with its NUL.
        let mut data: Vec<u8> = Vec::new();
        let path_len = bytes + 2 + 2;
        data.extend(IO_REPARSE_TAG_MOUNT_POINT.to_le_bytes());
        data.extend(u16::try_from(8 + path_len).unwrap().to_le_bytes());
        data.extend(0u16.to_le_bytes());
        data.extend(0u16.to_le_bytes());
        data.extend(u16::try_from(bytes).unwrap().to_le_bytes());
        data.extend(u16::try_from(bytes + 2).unwrap().to_le_bytes());
        data.extend(0u16.to_le_bytes());
        data.extend(target.iter().flat_map(|c| c.to_le_bytes()));
        data.extend([0, 0, 0, 0]);
        let parent = open_dir(link.parent().unwrap(), Access::Read).unwrap();
        let h = open_at(&parent, link.file_name().unwrap(), Access::ReadDelete, Want::Dir, Follow::No).unwrap();
        let write = {
            use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_FLAG_BACKUP_SEMANTICS, OPEN_EXISTING};
            let wide = super::super::wide(link.as_os_str());
            // SAFETY: a NUL-terminated path; no security attributes or template.
            let w = unsafe {
                CreateFileW(
                    wide.as_ptr(),
                    windows_sys::Win32::Foundation::GENERIC_WRITE,
                    SHARE_ALL,
                    std::ptr::null(),
                    OPEN_EXISTING,
                    FILE_FLAG_BACKUP_SEMANTICS | windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT,
                    std::ptr::null_mut(),
                )
            };
            // SAFETY: a handle just returned, owned by nothing else (checked below to be valid).
            unsafe { adopt(w as RawHandle) }
        };
        drop(h);
        let mut returned = 0u32;
        // SAFETY: a valid handle; the input buffer is `data`, no output buffer.
        let ok = unsafe {
            DeviceIoControl(
                write.as_raw_handle() as HANDLE,
                FSCTL_SET_REPARSE_POINT,
                data.as_ptr().cast(),
                u32::try_from(data.len()).unwrap(),
                std::ptr::null_mut(),
                0,
                &raw mut returned,
                std::ptr::null_mut(),
            )
        };
        assert_ne!(ok, 0, "FSCTL_SET_REPARSE_POINT: {}", io::Error::last_os_error());
        assert!(link.join("keep.txt").exists(), "the junction leads to {}", to.display());
    }
}
