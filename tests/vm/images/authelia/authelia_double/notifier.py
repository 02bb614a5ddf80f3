"""The filesystem notifier of 4.39.20: the file is rewritten for each message; the one-time code stands alone
between two rules of 40 dashes, the text is not wrapped (tests/fixtures/authelia/notification-4.39.20.txt)."""
import datetime
import os
import time


def send_one_time_code(path, name, email, code, domain, portal, public_id, client_ip):
    """Writes the identity-verification message to `path` (atomically: a reader never sees half a file)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    rule = "-" * 40
    text = "\n".join([
        f"Date: {now.strftime('%Y-%m-%d %H:%M:%S.%f')}000 +0000 UTC m=+{time.monotonic():.9f}",
        f"Recipient: {{{name} {email}}}",
        "Subject: Confirm your identity",
        "A ONE-TIME CODE HAS BEEN GENERATED TO COMPLETE A REQUESTED ACTION", "",
        f"Hi {name},", "",
        "This notification has been sent to you in order to verify your identity to change security details "
        f"for your account at {domain}.", "",
        "Do not share this notification or the content of this notification with anyone.", "",
        "The following one-time code should only be used in the prompt displayed in your browser.", "",
        rule, "", code, "", rule, "",
        "If you did not initiate the process your credentials may have been compromised and you should:", "",
        " 1. Revoke this code using the provided links below",
        " 2. Reset your password or other login credentials",
        " 3. Contact an Administrator", "",
        "To revoke the code, click the link below:", "",
        f"{portal}revoke/one-time-code?id={public_id}", "",
        rule, "",
        f"This notification was intended for {name}. This one-time code was generated due to an action from "
        f"{client_ip}. If you do not believe that your actions could have triggered this event or if "
        "you are concerned about your account's safety, please follow the explicit directions in this "
        "notification.", "",
        "Powered by Authelia https://www.authelia.com", "", ""])
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
