"""The Asterisk adapter: the AMI link (`ami`), the FastAGI server (`agi`), alert calls placed
and followed to one outcome (`calls`, `follow`, `causes`), and the AstDB journal and quota flags
(`astdb`). The only package that speaks AMI; nothing above it sees panoramisk."""
