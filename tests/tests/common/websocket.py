# A WebSocket echo server and client on the standard library only (RFC 6455 handshake
# and frames), for the latency-injector fidelity tests: `server PORT` prints "ready" and
# echoes; `client HOST PORT` upgrades GET /held, sends three frames and a close, and
# prints what came back as JSON.
import base64, hashlib, json, os, socket, struct, sys, threading
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def read_head(s):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += recv_exact(s, 1)
    return head.decode()

def read_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    mask = recv_exact(s, 4) if b1 & 0x80 else None
    data = recv_exact(s, n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data

def frame(opcode, data, mask):
    head = bytes([0x80 | opcode])
    n = len(data)
    bit = 0x80 if mask else 0
    head += bytes([bit | n]) if n < 126 else bytes([bit | 126]) + struct.pack("!H", n)
    if not mask:
        return head + data
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))

def serve(conn):
    head = read_head(conn)
    key = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    while True:
        opcode, data = read_frame(conn)
        if opcode == 8:
            conn.sendall(frame(8, data, False))
            conn.close()
            return
        conn.sendall(frame(opcode, data, False))

def server(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

def client(host, port):
    s = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /held HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = read_head(s)
    expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    out = {"status": head.split("\r\n")[0], "acceptOk": expected in head, "echoes": []}
    for text in ["hello", "x" * 300, "bye"]:
        s.sendall(frame(1, text.encode(), True))
        out["echoes"].append(read_frame(s)[1].decode())
    s.sendall(frame(8, b"\x03\xe8", True))
    out["close"] = read_frame(s)[0]
    out["eof"] = s.recv(1) == b""
    print(json.dumps(out))

if __name__ == "__main__":
    server(int(sys.argv[2])) if sys.argv[1] == "server" else client(sys.argv[2], int(sys.argv[3]))
