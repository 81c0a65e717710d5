"""Seeded generator of realistic phone-agent episodes (accessibility-tree screens + target actions).

Each episode is a templated task in one of 14 apps (goal paraphrases, random names, places,
items and texts), played out as a sequence of screens: a status bar and navigation bar, an app
bar, lists that need scrolling when the target is off screen, text fields that need a tap before
typing, loading pages that need a wait, distractor elements. Every action type of the grammar
occurs. Layouts are jittered per episode so coordinates must be read from the screen.

    python scripts/gen_episodes.py --split eval --steps 640 --out data/episodes/eval.jsonl

Each step's screen is also drawn as a PNG screenshot (workbench.task.render) into --screens
(default: screens/<split> beside --out, files <episode_id>-<step>.png) and referenced from the
record's `screenshot` field; --no-screens writes the trees only.

Splits draw from disjoint seed streams ("train", "calib", "eval"), so eval never repeats a
training episode's random state.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.task.episodes import Node, Step, save_steps  # noqa: E402
from workbench.task.grammar import Action  # noqa: E402

PEOPLE = ("Alice Chen", "Bob Smith", "Carol Diaz", "David Kim", "Emma Wilson", "Frank Lee",
          "Grace Hall", "Henry Ford", "Iris Wang", "Jack Brown", "Kate Moore", "Leo Garcia",
          "Mia Lopez", "Noah Clark", "Olivia King", "Paul Young", "Quinn Adams", "Rosa Perez",
          "Sam Turner", "Tina Scott", "Uma Patel", "Victor Hugo", "Wendy Baker", "Xavier Reed",
          "Yara Costa", "Zoe Evans", "Mom", "Dad", "Grandma", "Dr. Li", "Coach Mike", "Anna Bell",
          "Ben Carter", "Chloe Ng", "Dan Wu", "Eva Ross", "Finn Hart", "Gina Lane", "Hugo Park",
          "Ivy Stone")
PLACES = ("Central Park", "City Library", "Union Station", "Airport Terminal 2", "Golden Gym",
          "Sunrise Cafe", "Riverside Mall", "Grand Hotel", "Main Street Bakery", "Museum of Art",
          "West Hospital", "Lakeside Beach", "Tech Campus", "Old Town Square", "Harbor Pier",
          "North Stadium", "Green Market", "Blue Lagoon Spa", "Pine Hill School", "Ocean Aquarium")
ITEMS = ("wireless earbuds", "running shoes", "phone case", "coffee beans", "yoga mat",
         "desk lamp", "water bottle", "backpack", "usb cable", "notebook", "sunglasses",
         "rain jacket", "tea kettle", "board game", "bike helmet", "face cream", "socks",
         "power bank", "keyboard", "mouse pad", "umbrella", "wall clock", "pillow", "blender")
MESSAGES = ("I'll be late", "on my way", "see you at 7", "call me back", "happy birthday",
            "thanks a lot", "running 10 minutes late", "dinner is ready", "can we talk later",
            "meeting moved to 3pm", "good luck today", "arrived safely", "pick up milk please",
            "where are you", "love you", "let's meet tomorrow", "sounds good", "I'm home")
NOTES = ("buy eggs and bread", "call the plumber", "gym at 6am", "book flight to Tokyo",
         "pay rent on Friday", "return library books", "plan weekend trip", "water the plants",
         "renew passport", "dentist on Monday", "ideas for the party", "fix the bike")
EVENTS = ("Team meeting", "Dentist", "Lunch with Sara", "Yoga class", "Project review",
          "Birthday party", "Flight to Paris", "Parent meeting", "Car service", "Book club")
SONGS = (("Blue Sky", "The Wanderers"), ("Night Drive", "Luna"), ("Paper Hearts", "Milo"),
         ("Golden Hour", "Aria"), ("River Song", "Echo Lake"), ("Slow Dance", "Nova"),
         ("City Lights", "Metro"), ("Ocean Eyes", "Coral"), ("Wild Fire", "Blaze"),
         ("Morning Dew", "Fern"), ("Lost Keys", "Jolt"), ("Silver Moon", "Orbit"))
CITIES = ("Tokyo", "Paris", "London", "Berlin", "Madrid", "Rome", "Seoul", "Sydney", "Toronto",
          "Chicago", "Boston", "Lisbon", "Vienna", "Dublin", "Oslo", "Cairo", "Lima", "Delhi")
SITES = ("news.example.com", "weather.example.org", "recipes.example.net", "sports.example.com",
         "wiki.example.org", "shop.example.com", "travel.example.net", "music.example.com")
SETTINGS = (("Wi-Fi", "Network & internet"), ("Bluetooth", "Connected devices"),
            ("Dark theme", "Display"), ("Airplane mode", "Network & internet"),
            ("Do Not Disturb", "Sound"), ("Location", "Privacy"), ("Battery saver", "Battery"),
            ("Auto-rotate", "Display"))
SETTINGS_MENU = ("Network & internet", "Connected devices", "Apps", "Notifications", "Battery",
                 "Storage", "Sound", "Display", "Wallpaper", "Accessibility", "Security",
                 "Privacy", "Location", "Accounts", "System", "About phone")
TIMES = ("6:30", "7:00", "7:15", "7:45", "8:00", "5:50", "9:30", "6:00", "10:15", "11:00")
DAYS = tuple(str(d) for d in range(1, 29))
APPS = ("Settings", "Messages", "Contacts", "Maps", "Shopping", "Calendar", "Clock", "Camera",
        "Browser", "Mail", "Music", "Notes", "Weather", "Gallery")
PKG = {a: "com.android." + a.lower() for a in APPS}


def box(x1, y1, x2, y2):
    return (max(0, min(999, int(x1))), max(0, min(999, int(y1))),
            max(0, min(999, int(x2))), max(0, min(999, int(y2))))


class Screen:
    """A screen under construction: chrome plus content nodes."""

    def __init__(self, rng: random.Random, app: str):
        self.rng, self.app, self.nodes = rng, app, []
        pkg = PKG.get(app, "com.android.launcher")
        self.pkg = pkg
        h, m = rng.randint(6, 22), rng.randint(0, 59)
        self.add("android.widget.TextView", text=f"{h}:{m:02d}", rid="android:id/clock",
                 b=box(20, 0, 120, 28))
        self.add("android.widget.ImageView", desc=f"Battery {rng.randint(5, 100)} percent",
                 b=box(900, 0, 980, 28))
        if rng.random() < 0.7:
            self.add("android.widget.ImageView", desc="Wi-Fi signal full", b=box(820, 0, 890, 28))
        self.add("android.widget.ImageButton", desc="Back", rid="android:id/back",
                 b=box(140, 950, 300, 999), click=True)
        self.add("android.widget.ImageButton", desc="Home", rid="android:id/home",
                 b=box(420, 950, 580, 999), click=True)
        if rng.random() < 0.8:
            self.add("android.widget.ImageButton", desc="Recent apps", rid="android:id/recents",
                     b=box(700, 950, 860, 999), click=True)

    def add(self, cls, text="", desc="", rid="", b=(0, 0, 999, 999), click=False, edit=False,
            scroll=False) -> Node:
        if rid and ":" not in rid:
            rid = f"{self.pkg}:id/{rid}"
        node = Node(cls, text, desc, rid, b, click, edit, scroll)
        self.nodes.append(node)
        return node

    def app_bar(self, title: str, search: bool = True, more: bool = True) -> None:
        y = self.rng.randint(40, 60)
        self.add("android.widget.TextView", text=title, rid="toolbar_title", b=box(40, y, 600, y + 60))
        if search:
            self.add("android.widget.ImageButton", desc="Search", rid="action_search",
                     b=box(780, y, 860, y + 60), click=True)
        if more:
            self.add("android.widget.ImageButton", desc="More options", rid="action_more",
                     b=box(880, y, 970, y + 60), click=True)

    def list_rows(self, rows, rid="row", secondary=None, y0=None, height=None) -> list[Node]:
        """Stack clickable rows downward; returns the row nodes (clipped to the visible area)."""
        rng = self.rng
        y = y0 if y0 is not None else rng.randint(140, 200)
        hgt = height or rng.randint(64, 92)
        self.add("androidx.recyclerview.widget.RecyclerView", rid="list",
                 b=box(0, y, 999, 930), scroll=True)
        out = []
        for i, text in enumerate(rows):
            if y + hgt > 930:
                break
            out.append(self.add("android.widget.TextView", text=text, rid=rid,
                                b=box(30, y, 960, y + hgt - 6), click=True))
            if secondary:
                self.add("android.widget.TextView", text=secondary[i], rid=rid + "_sub",
                         b=box(60, y + hgt // 2, 900, y + hgt - 8))
            y += hgt
        return out

    def keyboard(self) -> None:
        self.add("android.inputmethodservice.KeyboardView", desc="Keyboard", b=box(0, 600, 999, 940))


_LAYOUTS = ("android.widget.FrameLayout", "android.widget.LinearLayout", "android.view.ViewGroup",
            "androidx.constraintlayout.widget.ConstraintLayout", "android.view.View")


def _containers(rng, n_nodes: int) -> list[Node]:
    """Layout containers and dividers, as real accessibility trees carry, so a screen has 10-60 nodes."""
    want = rng.randint(40, 60) if rng.random() < 0.1 else rng.randint(12, 40)
    out = []
    for _ in range(max(2, want - n_nodes)):
        cls = rng.choice(_LAYOUTS)
        if cls == "android.view.View":
            y = rng.randint(130, 920)
            out.append(Node(cls, "", "", "com.android:id/divider", box(0, y, 999, y + 2), False, False, False))
        else:
            y1, y2 = rng.choice(((0, 999), (0, 120), (120, 940), (940, 999), (30, 130)))
            out.append(Node(cls, "", "", "", box(0, y1, 999, y2), False, False, False))
    out.sort(key=lambda n: (n.cls == "android.view.View", n.bounds[1]))
    return out


def _pick(rng, pool, k, must=None):
    others = [p for p in pool if p != must]
    out = rng.sample(others, min(k, len(others)))
    if must is not None:
        out.insert(rng.randint(0, len(out)), must)
    return out


class Episode:
    """Plays out one task: each `step()` records (screen, target action, target box)."""

    def __init__(self, rng, eid, goal, app):
        self.rng, self.eid, self.goal, self.app = rng, eid, goal, app
        self.steps: list[Step] = []
        self.history: list[str] = []
        self.current = "Home screen"

    def emit(self, screen: Screen, action: Action, target: Node | None = None) -> None:
        if action.type in ("Tap", "Long Press", "Double Tap"):
            action = Action(action.type, element=target.center)
        nodes = list(screen.nodes)
        head, body = nodes[:3], nodes[3:]
        self.rng.shuffle(head)  # status-bar order varies, content keeps reading order
        body = _containers(self.rng, len(nodes)) + body
        text = action.to_text()
        self.steps.append(Step(self.eid, len(self.steps), self.goal, self.current,
                               tuple(self.history), tuple(head + body), text,
                               target.bounds if target is not None and action.type in
                               ("Tap", "Long Press", "Double Tap") else None))
        self.history.append(text)

    def screen(self) -> Screen:
        return Screen(self.rng, self.current)

    def launch(self) -> None:
        """Start on the home screen (icons grid) or another app, then Launch the task's app."""
        rng = self.rng
        if rng.random() < 0.25:
            self.current = rng.choice([a for a in APPS if a != self.app])
            s = self.screen()
            s.app_bar(self.current)
            s.list_rows(_pick(rng, PEOPLE + PLACES, rng.randint(4, 9)), rid="item")
        else:
            s = self.screen()
            icons = _pick(rng, APPS, rng.randint(8, 13), must=self.app)
            x0, y0 = rng.randint(20, 60), rng.randint(120, 220)
            for i, name in enumerate(icons):
                r, c = divmod(i, 4)
                s.add("android.widget.TextView", text=name, desc=name,
                      b=box(x0 + c * 240, y0 + r * 170, x0 + c * 240 + 200, y0 + r * 170 + 150),
                      click=True)
            s.add("android.widget.EditText", text="Search apps", rid="com.android.launcher:id/search",
                  b=box(60, 850, 940, 920), click=True, edit=True)
        self.emit(s, Action("Launch", app=self.app))
        self.current = self.app

    def find_in_list(self, title, rows, target_text, rid="row", secondary=None, action="Tap"):
        """Show a list; swipe up until target_text is visible, then act on it."""
        rng = self.rng
        y0, hgt = rng.randint(140, 200), rng.randint(64, 92)
        per_page = (930 - y0) // hgt
        idx = rows.index(target_text)
        start = 0
        while True:
            s = self.screen()
            s.app_bar(title)
            page = rows[start:start + per_page]
            sec = secondary[start:start + per_page] if secondary else None
            nodes = s.list_rows(page, rid=rid, secondary=sec, y0=y0, height=hgt)
            if start <= idx < start + len(nodes):
                target = nodes[idx - start]
                self.emit(s, Action(action, element=target.center), target)
                return
            x = rng.randint(400, 600)
            self.emit(s, Action("Swipe", start=(x, rng.randint(700, 800)),
                                end=(x, rng.randint(200, 300))))
            start += max(1, len(nodes) - 1)

    def type_into(self, title, field_text, field_rid, value, extra=()):
        """Tap an empty field, then type; returns the final screen-with-text builder."""
        rng = self.rng
        fy = rng.randint(150, 330)
        fb = box(40, fy, 960, fy + 70)
        s = self.screen()
        s.app_bar(title, search=False)
        for t in extra:
            s.add("android.widget.TextView", text=t, b=box(40, fy + 120, 960, fy + 180))
        field = s.add("android.widget.EditText", text=field_text, rid=field_rid, b=fb, click=True, edit=True)
        self.emit(s, Action("Tap"), field)
        s = self.screen()
        s.app_bar(title, search=False)
        s.add("android.widget.EditText", text=field_text, rid=field_rid, b=fb, click=True, edit=True)
        s.keyboard()
        self.emit(s, Action("Type", text=value))
        return fb

    def wait_loading(self, title):
        s = self.screen()
        s.add("android.widget.ProgressBar", desc="Loading", rid="progress", b=box(420, 420, 580, 580))
        s.add("android.widget.TextView", text=f"Loading {title}", b=box(300, 600, 700, 650))
        self.emit(s, Action("Wait", duration="2 seconds"))

    def finish(self, message):
        s = self.screen()
        s.app_bar(self.app)
        s.add("android.widget.TextView", text=self.rng.choice(("Done", "Saved", "Sent", "OK")),
              rid="snackbar", b=box(40, 840, 960, 910))
        self.emit(s, Action("finish", message=message))


def _button(s: Screen, text, rid, rng, y=None, desc=""):
    y = y if y is not None else rng.randint(700, 860)
    x = rng.randint(500, 760)
    return s.add("android.widget.Button", text=text, desc=desc, rid=rid, b=box(x, y, x + 200, y + 70),
                 click=True)


# ---- task templates: each plays out one episode ----------------------------------------------

def t_message(e: Episode):
    rng = e.rng
    who, msg = rng.choice(PEOPLE), rng.choice(MESSAGES)
    e.goal = rng.choice((f'Send a message to {who} saying "{msg}"', f'Text {who}: {msg}',
                         f'Tell {who} "{msg}" in Messages'))
    e.launch()
    names = _pick(rng, PEOPLE, rng.randint(5, 22), must=who)
    e.find_in_list("Messages", names, who, rid="conversation",
                   secondary=[rng.choice(MESSAGES) for _ in names])
    fb = e.type_into(who, "Text message", "compose", msg, extra=[rng.choice(MESSAGES)])
    s = e.screen()
    s.app_bar(who, search=False)
    s.add("android.widget.EditText", text=msg, rid="compose", b=fb, click=True, edit=True)
    send = s.add("android.widget.ImageButton", desc="Send", rid="send",
                 b=box(860, fb[1], 960, fb[3]), click=True)
    s.add("android.widget.ImageButton", desc="Attach", rid="attach", b=box(20, fb[1] + 90, 100, fb[3] + 90),
          click=True)
    e.emit(s, Action("Tap"), send)
    e.finish(f"Sent the message to {who}.")


def t_call(e: Episode):
    rng = e.rng
    who = rng.choice(PEOPLE)
    e.goal = rng.choice((f"Call {who}", f"Phone {who} from my contacts", f"Make a call to {who}"))
    e.launch()
    names = sorted(_pick(rng, PEOPLE, rng.randint(5, 24), must=who))
    e.find_in_list("Contacts", names, who, rid="contact_name")
    s = e.screen()
    s.app_bar(who, search=False)
    s.add("android.widget.TextView", text=f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
          b=box(40, 300, 960, 360))
    y = rng.randint(420, 600)
    call = s.add("android.widget.Button", text="Call", desc="Call", rid="call", b=box(60, y, 300, y + 80), click=True)
    s.add("android.widget.Button", text="Message", rid="sms", b=box(380, y, 620, y + 80), click=True)
    s.add("android.widget.Button", text="Video", rid="video", b=box(700, y, 940, y + 80), click=True)
    e.emit(s, Action("Tap"), call)
    e.finish(f"Calling {who}.")


def t_directions(e: Episode):
    rng = e.rng
    place = rng.choice(PLACES)
    e.goal = rng.choice((f"Get directions to {place}", f"Navigate to {place} in Maps",
                         f"How do I get to {place}?"))
    e.launch()
    fb = e.type_into("Maps", "Search here", "search_box", place)
    s = e.screen()
    s.app_bar("Maps", search=False)
    results = _pick(rng, PLACES, rng.randint(2, 4), must=place)
    nodes = s.list_rows(results, rid="result", secondary=[f"{rng.randint(1, 30)} km" for _ in results],
                        y0=fb[3] + 30, height=rng.randint(62, 78))
    target = next(n for n in nodes if n.text == place)
    e.emit(s, Action("Tap"), target)
    s = e.screen()
    s.app_bar(place, search=False)
    s.add("android.widget.ImageView", desc="Map view", rid="map", b=box(0, 120, 999, 600), scroll=True)
    d = _button(s, "Directions", "directions", rng)
    _button(s, "Save", "save", rng, y=d.bounds[1] - 100)
    s.add("android.widget.Button", text="Share", rid="share", b=box(40, d.bounds[1], 240, d.bounds[3]), click=True)
    e.emit(s, Action("Tap"), d)
    e.finish(f"Showing directions to {place}.")


def t_shop(e: Episode):
    rng = e.rng
    item = rng.choice(ITEMS)
    e.goal = rng.choice((f"Search for {item} and add it to the cart", f"Buy {item}",
                         f"Add {item} to my shopping cart"))
    e.launch()
    fb = e.type_into("Shopping", "Search products", "search_src_text", item)
    s = e.screen()
    s.app_bar("Results", search=False)
    brands = ("Acme", "Nova", "Zen", "Peak", "Orbit", "Pure")
    names = [f"{rng.choice(brands)} {i}" for i in _pick(rng, ITEMS, rng.randint(2, 4), must=item)]
    target_name = next(n for n in names if n.endswith(item))
    nodes = s.list_rows(names, rid="product", secondary=[f"${rng.randint(5, 199)}.99" for _ in names],
                        y0=fb[3] + 20, height=rng.randint(62, 78))
    target = next(n for n in nodes if n.text == target_name)
    e.emit(s, Action("Tap"), target)
    s = e.screen()
    s.app_bar(target_name, search=False)
    s.add("android.widget.ImageView", desc="Product photo", b=box(100, 140, 900, 520))
    s.add("android.widget.TextView", text=f"${rng.randint(5, 199)}.99", b=box(40, 540, 400, 600))
    add = _button(s, "Add to cart", "add_to_cart", rng)
    _button(s, "Buy now", "buy_now", rng, y=add.bounds[1] - 100)
    e.emit(s, Action("Tap"), add)
    e.finish(f"Added {item} to the cart.")


def t_event(e: Episode):
    rng = e.rng
    title, day = rng.choice(EVENTS), rng.choice(DAYS)
    e.goal = rng.choice((f"Create an event {title} on day {day}", f"Add {title} to my calendar on the {day}th",
                         f"Schedule {title} for day {day} this month"))
    e.launch()
    s = e.screen()
    s.app_bar("Calendar")
    x0, y0, cw, ch = rng.randint(10, 40), rng.randint(180, 240), rng.randint(125, 135), rng.randint(90, 110)
    for i, d in enumerate(DAYS):
        r, c = divmod(i, 7)
        s.add("android.widget.TextView", text=d, b=box(x0 + c * cw, y0 + r * ch, x0 + c * cw + cw - 8,
                                                      y0 + r * ch + ch - 8), click=True)
    fab = s.add("android.widget.ImageButton", desc="New event", rid="fab_add", b=box(820, 820, 940, 920), click=True)
    e.emit(s, Action("Tap"), fab)
    fb = e.type_into("New event", "Title", "event_title", title)
    s = e.screen()
    s.app_bar("New event", search=False)
    s.add("android.widget.EditText", text=title, rid="event_title", b=fb, click=True, edit=True)
    target = None
    y0 = fb[3] + 40
    for i, d in enumerate(DAYS):
        r, c = divmod(i, 7)
        n = s.add("android.widget.TextView", text=d, b=box(x0 + c * cw, y0 + r * 80, x0 + c * cw + cw - 8,
                                                          y0 + r * 80 + 72), click=True)
        target = n if d == day else target
    e.emit(s, Action("Tap"), target)
    s = e.screen()
    s.app_bar("New event", search=False)
    s.add("android.widget.TextView", text=f"{title}, day {day}", b=box(40, 200, 960, 260))
    save = _button(s, "Save", "save", rng)
    _button(s, "Cancel", "cancel", rng, y=save.bounds[1] - 100)
    e.emit(s, Action("Tap"), save)
    e.finish(f"Created {title} on day {day}.")


def t_alarm(e: Episode):
    rng = e.rng
    t = rng.choice(TIMES)
    e.goal = rng.choice((f"Set an alarm for {t}", f"Wake me up at {t}", f"Create a {t} alarm"))
    e.launch()
    s = e.screen()
    tabs = ["Alarm", "Clock", "Timer", "Stopwatch"]
    rng.shuffle(tabs)
    y = rng.randint(100, 140)
    tab = None
    for i, name in enumerate(tabs):
        n = s.add("android.widget.TextView", text=name, rid="tab", b=box(i * 250, y, i * 250 + 240, y + 60), click=True)
        tab = n if name == "Alarm" else tab
    s.add("android.widget.TextView", text=f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d}",
          b=box(200, 300, 800, 450))
    e.emit(s, Action("Tap"), tab)
    s = e.screen()
    s.app_bar("Alarm", search=False)
    olds = _pick(rng, TIMES, rng.randint(1, 4), must=None)
    s.list_rows([o for o in olds if o != t], rid="alarm_time")
    add = s.add("android.widget.ImageButton", desc="Add alarm", rid="fab", b=box(430, 820, 570, 920), click=True)
    e.emit(s, Action("Tap"), add)
    fb = e.type_into("New alarm", "Enter time", "time_input", t)
    s = e.screen()
    s.app_bar("New alarm", search=False)
    s.add("android.widget.EditText", text=t, rid="time_input", b=fb, click=True, edit=True)
    ok = _button(s, "OK", "ok", rng)
    _button(s, "Cancel", "cancel", rng, y=ok.bounds[1] - 100)
    e.emit(s, Action("Tap"), ok)
    e.finish(f"Alarm set for {t}.")


def t_photo(e: Episode):
    rng = e.rng
    home = rng.random() < 0.5
    e.goal = (rng.choice(("Take a photo and go back to the home screen",
                          "Snap a picture, then return home")) if home
              else rng.choice(("Take a photo", "Take a picture with the camera", "Snap a photo")))
    e.launch()
    e.wait_loading("camera")
    s = e.screen()
    s.add("android.view.SurfaceView", desc="Camera preview", b=box(0, 40, 999, 780))
    x = rng.randint(420, 460)
    shutter = s.add("android.widget.ImageButton", desc="Shutter", rid="shutter", b=box(x, 800, x + 130, 930), click=True)
    s.add("android.widget.ImageButton", desc="Switch camera", rid="switch", b=box(760, 820, 860, 920), click=True)
    s.add("android.widget.ImageView", desc="Last photo", rid="thumb", b=box(120, 820, 220, 920), click=True)
    s.add("android.widget.TextView", text=rng.choice(("Photo", "Video", "Portrait")), b=box(400, 720, 600, 770))
    e.emit(s, Action("Tap"), shutter)
    if home:
        s = e.screen()
        s.add("android.view.SurfaceView", desc="Camera preview", b=box(0, 40, 999, 780))
        s.add("android.widget.ImageView", desc="Last photo", rid="thumb", b=box(120, 820, 220, 920), click=True)
        e.emit(s, Action("Home"))
        e.current = "Home screen"
    e.finish("Took a photo.")


def t_browse(e: Episode):
    rng = e.rng
    site = rng.choice(SITES)
    e.goal = rng.choice((f"Open {site} in the browser", f"Go to {site}", f"Visit the website {site}"))
    e.launch()
    e.type_into("Browser", "Search or type URL", "url_bar", site)
    s = e.screen()
    s.app_bar("Browser", search=False)
    s.add("android.widget.EditText", text=site, rid="url_bar", b=box(40, 130, 960, 200), click=True, edit=True)
    sug = s.list_rows([site] + [rng.choice(SITES) for _ in range(rng.randint(1, 3))], rid="suggestion", y0=230)
    e.emit(s, Action("Tap"), sug[0])
    e.wait_loading(site)
    e.finish(f"Opened {site}.")


def t_delete_mail(e: Episode):
    rng = e.rng
    who = rng.choice(PEOPLE)
    e.goal = rng.choice((f"Delete the email from {who}", f"Remove {who}'s email from my inbox",
                         f"Trash the mail {who} sent"))
    e.launch()
    senders = _pick(rng, PEOPLE, rng.randint(4, 20), must=who)
    e.find_in_list("Inbox", senders, who, rid="sender", action="Long Press",
                   secondary=[rng.choice(("Invoice", "Hello", "Meeting notes", "Re: plans", "Photos"))
                              for _ in senders])
    s = e.screen()
    s.app_bar("1 selected", search=False, more=False)
    y = rng.randint(40, 60)
    d = s.add("android.widget.ImageButton", desc="Delete", rid="delete", b=box(760, y, 840, y + 60), click=True)
    s.add("android.widget.ImageButton", desc="Archive", rid="archive", b=box(660, y, 740, y + 60), click=True)
    s.add("android.widget.ImageButton", desc="Mark unread", rid="unread", b=box(860, y, 940, y + 60), click=True)
    s.list_rows(_pick(rng, PEOPLE, 5), rid="sender")
    e.emit(s, Action("Tap"), d)
    e.finish(f"Deleted the email from {who}.")


def t_music(e: Episode):
    rng = e.rng
    song, artist = rng.choice(SONGS)
    e.goal = rng.choice((f"Play {song} by {artist}", f"Put on the song {song}", f"I want to hear {song}"))
    e.launch()
    fb = e.type_into("Music", "Songs, artists, albums", "search_music", song)
    s = e.screen()
    s.app_bar("Music", search=False)
    pairs = _pick(rng, SONGS, rng.randint(1, 4), must=(song, artist))
    nodes = s.list_rows([p[0] for p in pairs], rid="track", secondary=[p[1] for p in pairs], y0=fb[3] + 30, height=rng.randint(62, 78))
    target = next(n for n in nodes if n.text == song)
    e.emit(s, Action("Tap"), target)
    e.finish(f"Playing {song} by {artist}.")


def t_note(e: Episode):
    rng = e.rng
    text = rng.choice(NOTES)
    e.goal = rng.choice((f"Create a note saying {text}", f"Write down: {text}", f"Make a new note: {text}"))
    e.launch()
    s = e.screen()
    s.app_bar("Notes")
    s.list_rows(_pick(rng, NOTES, rng.randint(2, 8), must=None), rid="note_title")
    fab = s.add("android.widget.ImageButton", desc="New note", rid="fab_new", b=box(820, 820, 940, 920), click=True)
    e.emit(s, Action("Tap"), fab)
    fb = e.type_into("New note", "Note", "note_body", text)
    s = e.screen()
    s.app_bar("New note", search=False)
    s.add("android.widget.EditText", text=text, rid="note_body", b=fb, click=True, edit=True)
    s.keyboard()
    e.emit(s, Action("Back"))
    e.finish("Saved the note.")


def t_setting(e: Episode):
    rng = e.rng
    name, section = rng.choice(SETTINGS)
    on = rng.random() < 0.5
    e.goal = rng.choice((f"Turn {'on' if on else 'off'} {name}", f"{'Enable' if on else 'Disable'} {name}",
                         f"Switch {name} {'on' if on else 'off'}"))
    e.launch()
    menu = list(SETTINGS_MENU)
    e.find_in_list("Settings", menu, section, rid="title")
    s = e.screen()
    s.app_bar(section)
    toggles = [n for n, sec in SETTINGS if sec == section]
    others = ["Advanced", "Data usage", "Hotspot", "Preferences", "Saved networks", "Scan"]
    rows = toggles + rng.sample(others, rng.randint(2, 5))
    rng.shuffle(rows)
    y, hgt = rng.randint(150, 200), rng.randint(70, 90)
    target = None
    for r in rows:
        s.add("android.widget.TextView", text=r, rid="title", b=box(40, y, 700, y + hgt - 8), click=True)
        if r in toggles:
            sw = s.add("android.widget.Switch", text="ON" if (r == name) != on else "OFF", rid="switch_widget",
                       b=box(800, y, 950, y + hgt - 8), click=True)
            target = sw if r == name else target
        y += hgt
    e.emit(s, Action("Tap"), target)
    e.finish(f"{name} is {'on' if on else 'off'}.")


def t_weather(e: Episode):
    rng = e.rng
    city = rng.choice(CITIES)
    e.goal = rng.choice((f"Check the weather in {city}", f"What's the weather like in {city}?",
                         f"Show me the forecast for {city}"))
    e.launch()
    fb = e.type_into("Weather", "Search city", "city_search", city)
    s = e.screen()
    s.app_bar("Weather", search=False)
    cities = _pick(rng, CITIES, rng.randint(1, 4), must=city)
    nodes = s.list_rows(cities, rid="city", y0=fb[3] + 30, height=rng.randint(62, 78))
    e.emit(s, Action("Tap"), next(n for n in nodes if n.text == city))
    s = e.screen()
    s.app_bar(city, search=False)
    deg = rng.randint(-5, 35)
    s.add("android.widget.TextView", text=f"{deg} C", b=box(300, 250, 700, 400))
    e.emit(s, Action("finish", message=f"It is {deg} C in {city}."))


def t_gallery(e: Episode):
    rng = e.rng
    nth = rng.randint(1, 3)
    word = ("first", "second", "third")[nth - 1]
    e.goal = rng.choice((f"Open the {word} photo and zoom in", f"Zoom into the {word} picture in my gallery",
                         f"Show the {word} photo, then swipe to the next one"))
    swipe = "swipe" in e.goal
    e.launch()
    s = e.screen()
    s.app_bar("Photos")
    x0, y0, sz = rng.randint(10, 30), rng.randint(140, 180), rng.randint(300, 320)
    photos = []
    for i in range(rng.randint(6, 9)):
        r, c = divmod(i, 3)
        photos.append(s.add("android.widget.ImageView", desc=f"Photo {i + 1}", rid="thumbnail",
                            b=box(x0 + c * sz, y0 + r * sz, x0 + c * sz + sz - 10, y0 + r * sz + sz - 10), click=True))
    e.emit(s, Action("Tap"), photos[nth - 1])
    s = e.screen()
    img = s.add("android.widget.ImageView", desc=f"Photo {nth}", rid="photo_view", b=box(0, 100, 999, 860), click=True)
    s.add("android.widget.ImageButton", desc="Share", rid="share", b=box(100, 880, 200, 940), click=True)
    s.add("android.widget.ImageButton", desc="Delete", rid="delete", b=box(780, 880, 880, 940), click=True)
    if swipe:
        y = rng.randint(400, 600)
        e.emit(s, Action("Swipe", start=(rng.randint(750, 850), y), end=(rng.randint(150, 250), y)))
        e.finish(f"Showing photo {nth + 1}.")
    else:
        e.emit(s, Action("Double Tap"), img)
        e.finish(f"Zoomed into photo {nth}.")


TASKS = {"Messages": t_message, "Contacts": t_call, "Maps": t_directions, "Shopping": t_shop,
         "Calendar": t_event, "Clock": t_alarm, "Camera": t_photo, "Browser": t_browse,
         "Mail": t_delete_mail, "Music": t_music, "Notes": t_note, "Settings": t_setting,
         "Weather": t_weather, "Gallery": t_gallery}


def generate(split: str, n_steps: int, seed: int = 0) -> list[Step]:
    """Generate whole episodes until at least n_steps steps.

    Args:
        split: "train", "calib" or "eval" (disjoint seed streams).
        n_steps: minimum number of steps.
        seed: seed within the split.
    Returns:
        The steps, episode after episode.
    """
    rng = random.Random(f"{split}:{seed}")
    steps: list[Step] = []
    i = 0
    while len(steps) < n_steps:
        app = rng.choice(APPS)
        e = Episode(rng, f"{split}-{seed}-{i:05d}", "", app)
        TASKS[app](e)
        steps.extend(e.steps)
        i += 1
    return steps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", required=True, choices=("train", "calib", "eval"))
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--screens", metavar="DIR",
                   help="folder of the screenshot PNGs (default: screens/<split> beside --out)")
    p.add_argument("--no-screens", action="store_true", help="write the accessibility trees only, no PNGs")
    a = p.parse_args(argv)
    if a.no_screens and a.screens:
        p.error("--screens and --no-screens exclude each other")
    steps = generate(a.split, a.steps, a.seed)
    out = Path(a.out)
    if not a.no_screens:
        from workbench.task.render import write_screenshots

        folder = Path(a.screens) if a.screens else out.parent / "screens" / a.split
        steps = write_screenshots(steps, folder)
        print(f"drew {len(steps)} screenshots into {folder}")
    save_steps(steps, out)
    print(f"wrote {len(steps)} steps to {a.out}")


if __name__ == "__main__":
    main()
