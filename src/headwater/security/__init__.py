"""Security rules shared by the broker and the HTTP services, with no I/O of their own beyond
the files they are given: SASL exchanges (PLAIN, SCRAM), the credential store, TLS contexts,
certificates for development, and principal mapping.

It sits below both ``headwater.broker`` and ``headwater.client``, so the rules are written
once and the broker still never imports the client.
"""
