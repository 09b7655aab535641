"use strict";
// Last script on the page: every page module has registered itself by now.
Console.boot();
