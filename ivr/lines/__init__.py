"""The phone lines served over FastAGI: the director's trigger line (`trigger`), the report and
control line (`report`), the callback line (`callback`), what they share (`call`: one caller,
menus, digits; the line context) and the PIN check (`pin`); `server` serves the three."""
