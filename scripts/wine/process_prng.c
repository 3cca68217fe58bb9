/* Wine 8.0 lacks `ProcessPrng` in bcryptprimitives.dll (added in Wine 8.13), which Rust's std imports since 1.78
 * (rust-lang/rust#121337): every Rust exe exits 53 at start. This DLL exports it, filled by advapi32's
 * RtlGenRandom (`SystemFunction036`), which Wine has. Used only to run the test suite under Wine. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
