# Included by hotpath.pyx (one compiled module; kept apart so each file reads
# on its own): the plain-response parser and the byte search it uses.
#
# A response is "plain" when it is one complete message in one read: a
# status line (HTTP/1.0 or 1.1, a 3-digit status other than 1xx/204/304, a
# printable reason), token-named header lines with printable values, exactly
# one Content-Length, no Transfer-Encoding or Upgrade, a Connection header (if
# any) of close or keep-alive, and a body ending where the read ends. For
# those, status and keep-alive are what httptools gives (tests/traffic/
# test_hotpath.py checks it); anything else returns 0 and httptools parses it.

cdef extern from "string.h":
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen) nogil

cdef Py_ssize_t _find(bytes buf, Py_ssize_t start, Py_ssize_t end, bytes needle):
    """buf.find(needle, start, end), without the argument parsing."""
    cdef const char *b = PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(needle)
    cdef const char *p
    if end > PyBytes_GET_SIZE(buf):
        end = PyBytes_GET_SIZE(buf)
    if end - start < n:
        return -1
    p = <const char *>memmem(b + start, end - start, PyBytes_AS_STRING(needle), n)
    return -1 if p == NULL else p - b


cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c | 0x20 if 65 <= c <= 90 else c


cdef inline bint _is_tchar(unsigned char c) noexcept nogil:
    # RFC 9110 token characters
    if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122:
        return True
    return c in b"!#$%&'*+-.^_`|~"


cdef bint _name_is(const unsigned char *p, Py_ssize_t n, const char *lower_name, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i
    if n != k:
        return False
    for i in range(n):
        if _lower(p[i]) != <unsigned char>lower_name[i]:
            return False
    return True


cdef int _plain_response(const unsigned char *p, Py_ssize_t n, Py_ssize_t hend, int *status,
                         bint *keepalive) noexcept nogil:
    """1 if ``p[:n]`` is exactly one plain complete response whose header block
    ends at ``hend`` (the index of CRLF CRLF): fills status and keep-alive as
    httptools would. 0 for anything else (httptools then parses it)."""
    cdef Py_ssize_t i, j, line, colon, vs, ve
    cdef long long length = -1
    cdef int minor, st
    cdef int conn = 0  # 1 close, 2 keep-alive
    if hend < 12 or n < hend + 4:
        return 0
    if not (p[0] == b'H' and p[1] == b'T' and p[2] == b'T' and p[3] == b'P' and p[4] == b'/' and p[5] == b'1'
            and p[6] == b'.' and (p[7] == b'0' or p[7] == b'1') and p[8] == b' '):
        return 0
    minor = p[7] - 48
    for i in range(9, 12):
        if not (48 <= p[i] <= 57):
            return 0
    st = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
    if st < 200 or st == 204 or st == 304:
        return 0
    # the reason phrase: printable ASCII up to the line's CRLF
    i = 12
    if p[i] == b' ':
        i += 1
        while i < hend and p[i] != b'\r':
            if not (32 <= p[i] <= 126 or p[i] == 9):
                return 0
            i += 1
    if i > hend or p[i] != b'\r' or p[i + 1] != b'\n':
        return 0
    line = i + 2
    while line < hend + 2:  # each header line: token ":" OWS value OWS CRLF
        colon = line
        while colon < hend and _is_tchar(p[colon]):
            colon += 1
        if colon == line or p[colon] != b':':
            return 0
        vs = colon + 1
        while p[vs] == b' ' or p[vs] == 9:
            vs += 1
        ve = vs
        while ve < hend + 2 and p[ve] != b'\r':
            if not (32 <= p[ve] <= 126 or p[ve] == 9):
                return 0
            ve += 1
        if ve >= hend + 2 or p[ve + 1] != b'\n':
            return 0
        j = ve
        while j > vs and (p[j - 1] == b' ' or p[j - 1] == 9):
            j -= 1
        if _name_is(p + line, colon - line, "content-length", 14):
            if length >= 0 or j == vs or j - vs > 15:
                return 0
            length = 0
            for i in range(vs, j):
                if not (48 <= p[i] <= 57):
                    return 0
                length = length * 10 + (p[i] - 48)
        elif _name_is(p + line, colon - line, "connection", 10) or \
                _name_is(p + line, colon - line, "proxy-connection", 16):
            if _name_is(p + vs, j - vs, "close", 5):
                conn = 1
            elif _name_is(p + vs, j - vs, "keep-alive", 10):
                conn = 2
            else:
                return 0
        elif _name_is(p + line, colon - line, "transfer-encoding", 17) or \
                _name_is(p + line, colon - line, "upgrade", 7):
            return 0
        line = ve + 2
    if length < 0 or hend + 4 + length != n:
        return 0
    status[0] = st
    keepalive[0] = (conn != 1) if minor == 1 else (conn == 2)
    return 1


def plain_response(bytes data):
    """``(status, keep_alive)`` if ``data`` is one plain complete response, which
    Conn parses itself; None if it goes to httptools (tests/traffic/test_hotpath.py)."""
    cdef int status = 0
    cdef bint keepalive = False
    cdef Py_ssize_t end = _find(data, 0, PyBytes_GET_SIZE(data), b"\r\n\r\n")
    if end >= 0 and _plain_response(<const unsigned char *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), end,
                                    &status, &keepalive):
        return status, bool(keepalive)
    return None
