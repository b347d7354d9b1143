"""The consortium network: the wire format, the authenticated handshake, the encrypted
channel and the transport that connects a node to its peers."""
