"""Who may do what: the phone lines' PINs (`pins`), the API's bearer tokens and roles
(`tokens`), and the audit log every write goes to (`audit`)."""
