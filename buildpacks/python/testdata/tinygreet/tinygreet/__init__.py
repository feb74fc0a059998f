def greet(who):
    return "hello from " + who
