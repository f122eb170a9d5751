"""The staff roster: `roster` (the `Person` record and its store in Redis) and the HR CSV export
read all or nothing and written back (`csvfile`, its header in `columns`)."""
