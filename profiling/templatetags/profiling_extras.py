from django import template

register = template.Library()


@register.filter
def percent(value, digits=1):
    if value is None or value == "":
        return "n/a"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def arrow_chain(chain):
    return " → ".join(chain or [])


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)
