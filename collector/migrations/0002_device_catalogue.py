from django.db import migrations


def load_catalogue(apps, schema_editor):
    from collector.catalogue import CHIPS, DEVICES

    Device = apps.get_model("collector", "Device")
    for identifier, name, chip, ram in DEVICES:
        Device.objects.update_or_create(
            identifier=identifier,
            defaults={"name": name, "chip": chip, "chip_rank": CHIPS[chip][0], "ram_gb": ram, "known": True},
        )


class Migration(migrations.Migration):
    dependencies = [("collector", "0001_initial")]
    operations = [migrations.RunPython(load_catalogue, migrations.RunPython.noop)]
